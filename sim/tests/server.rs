//! Integration tests of the simulator's HTTP API against a real server on 127.0.0.1:0.

use std::time::{Duration, Instant};

use cpi_sim::{Sim, SimConfig, SimError};
use serde_json::{Value, json};
use tempfile::TempDir;

/// Long enough that back-to-back requests on a loaded machine still see transitional states.
const TRANSITION: Duration = Duration::from_millis(300);

fn config(dir: &TempDir) -> SimConfig {
    let mut cfg = SimConfig::new(dir.path().join("state").join("sim.json"));
    cfg.transition = TRANSITION;
    cfg
}

async fn start(dir: &TempDir) -> Sim {
    Sim::start(config(dir)).await.expect("sim starts")
}

/// A response: status, Retry-After header, body text.
struct Resp {
    status: u16,
    retry_after: Option<String>,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    fn new(sim: &Sim) -> Self {
        Client {
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            base: sim.url(),
            token: Some(sim.token().to_owned()),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<&str>) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = req.send().await.expect("request is sent");
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = resp.text().await.expect("body");
        Resp {
            status,
            retry_after,
            text,
        }
    }

    async fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None).await
    }

    async fn post(&self, path: &str, body: &str) -> Resp {
        self.call("POST", path, Some(body)).await
    }
}

async fn status_of(c: &Client, id: &str) -> String {
    let r = c.get(&format!("/instances/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["status"].as_str().unwrap_or("").to_owned()
}

/// Polls until the worker reaches `want`; panics after 5 s. Returns how long it took.
async fn wait_status(c: &Client, id: &str, want: &str) -> Duration {
    let t = Instant::now();
    loop {
        let got = status_of(c, id).await;
        if got == want {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "stuck in {got}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn worker_lifecycle_transitions() {
    let dir = TempDir::new().expect("tempdir");
    let sim = start(&dir).await;
    let c = Client::new(&sim);

    let r = c
        .post(
            "/instances",
            r#"{"name":"web-1","type":"standard-4","image":"debian-12","region":"us-west","network":"prod"}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(
        r.text.starts_with(r#"{"id":"wrk-"#),
        "id must be the first key: {}",
        r.text
    );
    let w = r.json();
    let id = w["id"].as_str().expect("id").to_owned();
    let id_re = regex::Regex::new(r"^wrk-[0-9a-f]{8}$").expect("re");
    assert!(id_re.is_match(&id), "{id}");
    assert_eq!(w["status"], "provisioning");
    assert_eq!(w["name"], "web-1");
    assert_eq!(w["type"], "standard-4");
    assert_eq!(w["region"], "us-west");
    assert_eq!(w["network"], "prod");
    assert!(
        regex::Regex::new(r"^10\.0\.\d+\.\d+$")
            .expect("re")
            .is_match(w["ip"].as_str().unwrap_or(""))
    );
    assert!(w["created_at"].as_u64().is_some());

    // Defaults for omitted fields.
    let r = c.post("/instances", r#"{"name":"bare"}"#).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["type"], "standard-2");
    assert_eq!(r.json()["region"], "us-central");

    wait_status(&c, &id, "running").await;

    let r = c.post(&format!("/instances/{id}/start"), "").await;
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (200, json!("running"))
    );

    let r = c.post(&format!("/instances/{id}/stop"), "").await;
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (200, json!("stopping"))
    );
    let r = c.post(&format!("/instances/{id}/stop"), "").await;
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (200, json!("stopping"))
    );
    let took = wait_status(&c, &id, "stopped").await;
    assert!(took >= TRANSITION / 2, "settled too early: {took:?}");
    let r = c.post(&format!("/instances/{id}/stop"), "").await;
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (200, json!("stopped"))
    );

    let r = c.post(&format!("/instances/{id}/start"), "").await;
    assert_eq!(r.json()["status"], "starting");
    wait_status(&c, &id, "running").await;

    let r = c.post(&format!("/instances/{id}/reboot"), "").await;
    assert_eq!(r.json()["status"], "rebooting");
    wait_status(&c, &id, "running").await;

    let r = c.get("/instances?region=us-west").await;
    let list = r.json();
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(
        c.get("/instances").await.json().as_array().map(Vec::len),
        Some(2)
    );

    let r = c.call("DELETE", &format!("/instances/{id}"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"id": id, "deleted": true}));
    let r = c.get(&format!("/instances/{id}")).await;
    assert_eq!(
        (r.status, r.code()),
        (404, "ResourceNotFoundError".to_owned())
    );
    let r = c.post(&format!("/instances/{id}/start"), "").await;
    assert_eq!(r.status, 404);
    let r = c.call("DELETE", &format!("/instances/{id}"), None).await;
    assert_eq!(r.status, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn validation_errors_name_the_problem() {
    let dir = TempDir::new().expect("tempdir");
    let sim = start(&dir).await;
    let c = Client::new(&sim);
    let r = c.post("/instances", "{not json").await;
    assert_eq!((r.status, r.code()), (400, "ValidationError".to_owned()));
    assert!(r.text.contains("not valid JSON"), "{}", r.text);
    let r = c.post("/instances", "").await;
    assert_eq!(r.status, 400);
    let r = c.post("/instances", r#"{"type":"x"}"#).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("'name'"), "{}", r.text);
    let r = c.post("/instances", r#"{"name":"a","type":5}"#).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("'type'"), "{}", r.text);
    let r = c.get("/nope").await;
    assert_eq!(
        (r.status, r.code()),
        (404, "ResourceNotFoundError".to_owned())
    );
    let r = c.call("PATCH", "/instances", None).await;
    assert_eq!(r.status, 405);
    let r = c.get("/api/v2.0/pool/id/abc").await;
    assert_eq!((r.status, r.code()), (400, "ValidationError".to_owned()));
    let r = c.post("/pool", r#"{"name":"tank"}"#).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("topology"), "{}", r.text);
    sim.shutdown().await;
}

#[tokio::test]
async fn state_persists_across_restart() {
    let dir = TempDir::new().expect("tempdir");
    let sim = start(&dir).await;
    let (token, password) = (sim.token().to_owned(), sim.password().to_owned());
    assert_eq!(sim.username(), "admin");
    let c = Client::new(&sim);
    let id = c.post("/instances", r#"{"name":"keep"}"#).await.json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let topo = r#"{"name":"p1","topology":{"data":[{"type":"STRIPE","disks":["da0"]}]}}"#;
    assert_eq!(c.post("/pool", topo).await.json()["id"], 1);
    assert_eq!(c.call("DELETE", "/pool/id/1", None).await.text, "true");
    let issued = c
        .post(
            "/auth/token",
            &json!({"username": "admin", "password": password}).to_string(),
        )
        .await
        .json()["token"]
        .as_str()
        .expect("token")
        .to_owned();
    sim.shutdown().await;

    let sim = start(&dir).await;
    assert_eq!(sim.token(), token);
    assert_eq!(sim.password(), password);
    let mut c = Client::new(&sim);
    assert_eq!(
        c.get(&format!("/instances/{id}")).await.json()["name"],
        "keep"
    );
    let topo = r#"{"name":"p2","topology":{"data":[{"type":"STRIPE","disks":["da1"]}]}}"#;
    assert_eq!(
        c.post("/pool", topo).await.json()["id"],
        2,
        "pool ids are not reused"
    );
    c.token = Some(issued);
    assert_eq!(
        c.get("/instances").await.status,
        200,
        "issued tokens survive restarts"
    );
    sim.shutdown().await;

    // An explicit token and password in the config win over the stored ones.
    let mut cfg = config(&dir);
    cfg.token = Some("explicit-token".into());
    cfg.password = Some("pw".into());
    let sim = Sim::start(cfg).await.expect("sim starts");
    assert_eq!((sim.token(), sim.password()), ("explicit-token", "pw"));
    sim.shutdown().await;
}

#[tokio::test]
async fn corrupt_state_is_refused_and_left_untouched() {
    let dir = TempDir::new().expect("tempdir");
    let cfg = config(&dir);
    std::fs::create_dir_all(cfg.state_path.parent().expect("parent")).expect("mkdir");
    for junk in ["{\"workers\": [", "{}", ""] {
        std::fs::write(&cfg.state_path, junk).expect("write");
        let err = Sim::start(cfg.clone())
            .await
            .expect_err("corrupt state is refused");
        assert!(matches!(err, SimError::CorruptState { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&cfg.state_path.display().to_string()), "{msg}");
        assert_eq!(
            std::fs::read_to_string(&cfg.state_path).expect("read"),
            junk
        );
    }
}

#[tokio::test]
async fn non_loopback_addresses_are_refused() {
    let dir = TempDir::new().expect("tempdir");
    let mut cfg = config(&dir);
    cfg.addr = "0.0.0.0:0".parse().expect("addr");
    assert!(matches!(Sim::start(cfg).await, Err(SimError::Bind { .. })));
}

#[tokio::test]
async fn auth_is_required() {
    let dir = TempDir::new().expect("tempdir");
    let sim = start(&dir).await;
    let mut c = Client::new(&sim);
    c.token = None;
    let r = c.get("/instances").await;
    assert_eq!(
        (r.status, r.code()),
        (401, "AuthenticationError".to_owned())
    );
    assert_eq!(c.get("/healthz").await.json(), json!({"ok": true}));
    assert_eq!(
        c.get("/auth/check").await.json(),
        json!({"authenticated": false})
    );
    c.token = Some("wrong".into());
    assert_eq!(c.get("/api/v2.0/system/info").await.status, 401);
    assert_eq!(
        c.get("/auth/check").await.json(),
        json!({"authenticated": false})
    );

    let r = c
        .post("/auth/token", r#"{"username":"admin","password":"nope"}"#)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (401, "AuthenticationError".to_owned())
    );
    let body = json!({"username": "admin", "password": sim.password()}).to_string();
    let r = c.post("/api/v2.0/auth/token", &body).await;
    assert_eq!(r.status, 200);
    let issued = r.json()["token"].as_str().expect("token").to_owned();
    c.token = Some(issued);
    assert_eq!(
        c.get("/auth/check").await.json(),
        json!({"authenticated": true, "username": "admin"})
    );
    assert_eq!(c.get("/instances").await.status, 200);
    // Fault control needs the admin token itself.
    assert_eq!(c.get("/_sim/faults").await.status, 401);
    sim.shutdown().await;
}

#[tokio::test]
async fn quota_is_enforced() {
    let dir = TempDir::new().expect("tempdir");
    let mut cfg = config(&dir);
    cfg.max_workers = 2;
    let sim = Sim::start(cfg).await.expect("sim starts");
    let c = Client::new(&sim);
    for i in 0..2 {
        assert_eq!(
            c.post("/instances", &format!(r#"{{"name":"w{i}"}}"#))
                .await
                .status,
            201
        );
    }
    let r = c.post("/instances", r#"{"name":"w2"}"#).await;
    assert_eq!((r.status, r.code()), (403, "QuotaExceededError".to_owned()));
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("quota")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn injected_faults_then_recovery() {
    let dir = TempDir::new().expect("tempdir");
    let sim = start(&dir).await;
    let c = Client::new(&sim);
    let r = c
        .call(
            "PUT",
            "/_sim/faults",
            Some(r#"{"fail_status":429,"fail_count":2,"retry_after_secs":3}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(c.get("/healthz").await.status, 200, "healthz is exempt");
    for _ in 0..2 {
        let r = c.get("/instances").await;
        assert_eq!((r.status, r.code()), (429, "RateLimitError".to_owned()));
        assert_eq!(r.retry_after.as_deref(), Some("3"));
    }
    assert_eq!(c.get("/instances").await.status, 200, "recovered");
    assert_eq!(c.get("/_sim/faults").await.json()["fail_count"], 0);

    c.call(
        "PUT",
        "/_sim/faults",
        Some(r#"{"fail_status":503,"fail_count":1}"#),
    )
    .await;
    let r = c.get("/api/v2.0/pool").await;
    assert_eq!((r.status, r.code()), (503, "ProviderError".to_owned()));

    c.call("PUT", "/_sim/faults", Some(r#"{"malformed":true}"#))
        .await;
    let r = c.get("/system/version").await;
    assert_eq!(r.status, 200);
    assert!(
        serde_json::from_str::<Value>(&r.text).is_err(),
        "{}",
        r.text
    );

    c.call("PUT", "/_sim/faults", Some(r#"{"latency_ms":200}"#))
        .await;
    let t = Instant::now();
    assert_eq!(
        c.get("/system/version").await.text,
        r#"{"version":"cpi-sim 0.1.0"}"#
    );
    assert!(t.elapsed() >= Duration::from_millis(200));

    let r = c
        .call("PUT", "/_sim/faults", Some(r#"{"fail_code":500}"#))
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("fail_code"), "{}", r.text);
    let r = c.call("DELETE", "/_sim/faults", None).await;
    assert_eq!(r.json()["latency_ms"], 0);
    sim.shutdown().await;
}

/// Sends a raw request and returns (status, body bytes) or the transport error's text.
async fn raw(
    c: &Client,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, Vec<u8>), String> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = c
        .http
        .request(method, format!("{}{path}", c.base))
        .bearer_auth(c.token.as_deref().unwrap_or(""));
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_owned());
    }
    let resp = req.send().await.map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(|e| format!("{e:?}"))?;
    Ok((status, bytes.to_vec()))
}

#[tokio::test]
async fn connection_faults_reset_truncate_and_corrupt_responses() {
    let dir = TempDir::new().expect("tempdir");
    let sim = start(&dir).await;
    let c = Client::new(&sim);
    c.post("/instances", r#"{"name":"before"}"#).await;

    // reset: N requests get no response at all, and have no effect (they are still logged).
    let r = c.call("PUT", "/_sim/faults", Some(r#"{"reset":2}"#)).await;
    assert_eq!(r.json()["reset"], 2, "{}", r.text);
    c.call("DELETE", "/_sim/requests", None).await;
    for _ in 0..2 {
        let err = raw(&c, "POST", "/instances", Some(r#"{"name":"lost"}"#))
            .await
            .expect_err("no response");
        assert!(
            err.contains("reset") || err.contains("closed") || err.contains("Incomplete"),
            "{err}"
        );
    }
    assert_eq!(c.get("/_sim/requests").await.json()["count"], 2);
    assert_eq!(c.get("/_sim/faults").await.json()["reset"], false);
    let list = c.get("/instances").await.json();
    let names: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|w| w["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["before"], "reset requests change nothing");

    // truncate: Content-Length promises more than is sent, then the connection closes.
    c.call("PUT", "/_sim/faults", Some(r#"{"truncate":true}"#))
        .await;
    for _ in 0..2 {
        let err = raw(&c, "GET", "/instances", None)
            .await
            .expect_err("body is cut short");
        assert!(err.to_lowercase().contains("body"), "{err}");
    }
    assert_eq!(c.get("/_sim/faults").await.json()["truncate"], true);

    // non_utf8: the body is the real answer with invalid bytes in it.
    c.call("PUT", "/_sim/faults", Some(r#"{"non_utf8":1}"#))
        .await;
    let (status, bytes) = raw(&c, "GET", "/system/version", None)
        .await
        .expect("answered");
    assert_eq!(status, 200);
    assert!(std::str::from_utf8(&bytes).is_err(), "{bytes:?}");
    assert_eq!(
        c.get("/system/version").await.text,
        r#"{"version":"cpi-sim 0.1.0"}"#,
        "one request only"
    );

    for bad in [r#"{"reset":-1}"#, r#"{"truncate":"yes"}"#] {
        let r = c.call("PUT", "/_sim/faults", Some(bad)).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
    }
    let r = c.call("DELETE", "/_sim/faults", None).await;
    assert_eq!(r.json()["reset"], false);
    sim.shutdown().await;
}

#[tokio::test]
async fn request_log_records_raw_paths() {
    let dir = TempDir::new().expect("tempdir");
    let sim = start(&dir).await;
    let c = Client::new(&sim);
    c.call("DELETE", "/_sim/requests", None).await;
    c.get("/instances?region=us%20west&x=a%2Fb").await;
    c.post("/api/v2.0/instances/wrk-zz%2F1/start", r#"{"k":1}"#)
        .await;
    let log = c.get("/_sim/requests").await.json();
    assert_eq!(log["count"], 2, "{log}");
    assert_eq!(
        log["requests"][0],
        json!({"method": "GET", "path": "/instances?region=us%20west&x=a%2Fb", "body": ""})
    );
    assert_eq!(
        log["requests"][1],
        json!({"method": "POST", "path": "/api/v2.0/instances/wrk-zz%2F1/start", "body": "{\"k\":1}"})
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn truenas_routes_under_api_prefix() {
    let dir = TempDir::new().expect("tempdir");
    let sim = start(&dir).await;
    let c = Client::new(&sim);
    let info = c.get("/api/v2.0/system/info").await.text;
    let re = |r: &str| {
        regex::Regex::new(r)
            .expect("re")
            .captures(&info)
            .map(|c| c[1].to_owned())
    };
    assert_eq!(re(r#""hostname":\s*"([^"]+)""#).as_deref(), Some("cpi-sim"));
    assert_eq!(
        re(r#""version":\s*"([^"]+)""#).as_deref(),
        Some("TrueNAS-SIM-13.0-U6")
    );

    let body = r#"{"name":"tank","topology":{"data":[{"type":"STRIPE","disks":["da0","da1"]}]}}"#;
    let r = c.post("/api/v2.0/pool", body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.starts_with(r#"{"id":1,"#), "{}", r.text);
    let p = r.json();
    assert_eq!(p["status"], "ONLINE");
    assert_eq!(p["jail"]["state"], "up");
    assert_eq!(p["topology"]["data"][0]["disks"], json!(["da0", "da1"]));
    assert_eq!(
        c.post("/api/v2.0/pool", body).await.status,
        422,
        "duplicate name"
    );

    assert_eq!(
        c.get("/api/v2.0/pool/dataset").await.json(),
        json!([{"id": "tank", "name": "tank", "pool": "tank", "type": "FILESYSTEM"}])
    );
    assert_eq!(
        c.get("/api/v2.0/pool")
            .await
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let r = c.post("/api/v2.0/jail/id/1/stop", "").await;
    assert_eq!(
        (
            r.json()["status"].clone(),
            r.json()["jail"]["state"].clone()
        ),
        (json!("OFFLINE"), json!("down"))
    );
    let r = c.get("/api/v2.0/pool/id/1").await;
    assert_eq!(r.json()["status"], "OFFLINE");
    let r = c.post("/api/v2.0/jail/id/1/start", "").await;
    assert_eq!(
        (
            r.json()["status"].clone(),
            r.json()["jail"]["state"].clone()
        ),
        (json!("ONLINE"), json!("up"))
    );

    assert_eq!(c.post("/api/v2.0/jail/id/9/start", "").await.status, 404);
    assert_eq!(c.post("/api/v2.0/jail/id/x/start", "").await.status, 400);
    let r = c.call("DELETE", "/api/v2.0/pool/id/1", None).await;
    assert_eq!((r.status, r.text.as_str()), (200, "true"));
    assert_eq!(c.get("/api/v2.0/pool/id/1").await.status, 404);
    assert_eq!(c.get("/api/v2.0/pool/dataset").await.json(), json!([]));
    sim.shutdown().await;
}
