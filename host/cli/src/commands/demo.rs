//! `cpi demo`: the simulated cloud plus both §4 example providers, end to end.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use cpi::params::Inputs;
use cpi::{Engine, Error, Provider, Result};
use cpi_sim::{Sim, SimConfig};
use indexmap::IndexMap;
use serde_json::{Value, json};

use super::runtime;
use crate::cli::Global;
use crate::output::{self, outln};

pub fn exec(g: &Global) -> Result<ExitCode> {
    let io = |what: &str, e: std::io::Error| Error::internal(format!("demo: {what}: {e}"));
    let tmp = tempfile::tempdir().map_err(|e| io("temporary directory", e))?;
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).map_err(|e| io("bin directory", e))?;
    let exe = std::env::current_exe().map_err(|e| io("locating cpi", e))?;
    std::os::unix::fs::symlink(&exe, bin.join("cloudco-cli"))
        .map_err(|e| io("linking cloudco-cli", e))?;
    let cloudco = cpi::provider::builtin::provider("cloudco")?;
    let truenas = cpi::provider::builtin::provider("truenas")?;

    runtime()?.block_on(async {
        let mut cfg = SimConfig::new(tmp.path().join("state.json"));
        cfg.transition = Duration::from_millis(800);
        let sim = Sim::start(cfg)
            .await
            .map_err(|e| Error::internal(format!("simulator: {e}")))?;
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let engine = super::default_engine()?.with_env(vec![
            ("PATH".into(), path),
            ("CLOUDCO_API_URL".into(), sim.url()),
            ("CLOUDCO_API_KEY".into(), sim.token().to_string()),
            (
                "CLOUDCO_CONFIG_DIR".into(),
                tmp.path().display().to_string(),
            ),
        ]);
        let mut demo = Demo {
            engine,
            json: g.json,
            steps: 0,
        };
        if !g.json {
            outln!(
                "simulated cloud on {} (state in a temporary directory)\n",
                sim.url()
            );
        }
        let result = async {
            demo.cloudco(&cloudco).await?;
            demo.truenas(&truenas, &format!("{}/api/v2.0", sim.url()), sim.token())
                .await
        }
        .await;
        sim.shutdown().await;
        result?;
        if !g.json {
            outln!(
                "demo finished: {} steps, every required method of both providers ran",
                demo.steps
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

struct Demo {
    engine: Engine,
    json: bool,
    steps: usize,
}

impl Demo {
    async fn cloudco(&mut self, p: &Provider) -> Result<()> {
        self.lifecycle(p, &[]).await?;
        let created = self
            .step(p, "create_worker", &[("name", "demo-web-1")])
            .await?;
        let id = field(&created, "id")?;
        self.step(p, "list_workers", &[]).await?;
        self.wait(p, &[("worker_id", &id)], "running").await?;
        self.step(p, "stop_worker", &[("worker_id", &id)]).await?;
        self.wait(p, &[("worker_id", &id)], "stopped").await?;
        self.step(p, "start_worker", &[("worker_id", &id)]).await?;
        self.wait(p, &[("worker_id", &id)], "running").await?;
        self.step(p, "reboot_worker", &[("worker_id", &id)]).await?;
        self.step(p, "delete_worker", &[("worker_id", &id)]).await?;
        self.step(p, "list_workers", &[]).await?;
        self.expect_error(p, "get_worker", &[("worker_id", &id)])
            .await
    }

    async fn truenas(&mut self, p: &Provider, api_url: &str, token: &str) -> Result<()> {
        let base = [("api_url", api_url), ("api_key", token)];
        self.lifecycle(p, &base).await?;
        let created = self
            .step(
                p,
                "create_worker",
                &[
                    base[0],
                    base[1],
                    ("name", "tank"),
                    ("disk_names", r#"["ada0","ada1"]"#),
                ],
            )
            .await?;
        let id = match &created["id"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let with_id = [base[0], base[1], ("worker_id", id.as_str())];
        self.step(p, "list_workers", &base).await?;
        self.step(p, "get_worker", &with_id).await?;
        self.step(p, "stop_worker", &with_id).await?;
        self.step(p, "get_worker", &with_id).await?;
        self.step(p, "start_worker", &with_id).await?;
        self.step(p, "delete_worker", &with_id).await?;
        self.expect_error(p, "get_worker", &with_id).await
    }

    async fn lifecycle(&mut self, p: &Provider, params: &[(&str, &str)]) -> Result<()> {
        self.banner(p, "init (§8 lifecycle)", params);
        let (reports, outcome) = self.engine.lifecycle(p, &inputs(params)).await;
        let value = json!({"steps": reports});
        self.show(p, "init", &value);
        outcome
    }

    async fn step(&mut self, p: &Provider, action: &str, params: &[(&str, &str)]) -> Result<Value> {
        self.banner(p, action, params);
        let value = self.engine.run(p, action, &inputs(params)).await?;
        self.show(p, action, &value);
        Ok(value)
    }

    async fn expect_error(
        &mut self,
        p: &Provider,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<()> {
        self.banner(
            p,
            &format!("{action} (after delete: an error is expected)"),
            params,
        );
        match self.engine.run(p, action, &inputs(params)).await {
            Err(err) => {
                self.show(p, action, &err.to_json());
                Ok(())
            }
            Ok(value) => Err(Error::internal(format!(
                "expected {action} to fail after delete, got {value}"
            ))),
        }
    }

    /// Polls get_worker until the worker reports `want` (the simulator moves states over time).
    async fn wait(&mut self, p: &Provider, params: &[(&str, &str)], want: &str) -> Result<()> {
        let started = Instant::now();
        loop {
            let value = self.engine.run(p, "get_worker", &inputs(params)).await?;
            if value["status"] == want || started.elapsed() > Duration::from_secs(20) {
                self.banner(p, &format!("get_worker (polled until {want})"), params);
                self.show(p, "get_worker", &value);
                return if value["status"] == want {
                    Ok(())
                } else {
                    Err(Error::internal(format!(
                        "worker never reached {want}: {value}"
                    )))
                };
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn banner(&mut self, p: &Provider, action: &str, params: &[(&str, &str)]) {
        self.steps += 1;
        if self.json {
            return;
        }
        let shown: Vec<String> = params
            .iter()
            .filter(|(k, _)| !cpi::secret::looks_secret(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        outln!("── {} · {action}  {}", p.name, shown.join(" "));
    }

    fn show(&self, p: &Provider, action: &str, value: &Value) {
        if self.json {
            outln!(
                "{}",
                json!({"provider": p.name, "action": action, "result": value})
            );
        } else {
            for line in output::render(value).lines() {
                outln!("   {line}");
            }
            outln!();
        }
    }
}

fn inputs(params: &[(&str, &str)]) -> Inputs {
    let cli: IndexMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Inputs {
        cli,
        ..Inputs::default()
    }
}

fn field(value: &Value, name: &str) -> Result<String> {
    value[name]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::internal(format!("result has no '{name}': {value}")))
}
