//! One run of an action: the state its steps share, and the one boundary its results and
//! errors leave through.

use serde_json::Value;

use super::hooks::Guard;
use crate::error::{Error, ErrorKind, Result};
use crate::exec::Scope;
use crate::params::{self, Resolved};
use crate::provider::Provider;
use crate::secret::Redactor;
use crate::status::{StatusMapper, Vocabulary};

/// One run of an action (one attempt, or one lifecycle step): what every step of it shares,
/// instead of a parameter each.
pub(super) struct Run<'a> {
    /// The provider (a standalone component's own definition when it brings one).
    pub provider: &'a Provider,
    /// The action's name.
    pub name: &'a str,
    /// What bounds the run: a component's hooks and grants, or an approved provider's scope;
    /// `None` for a built-in provider.
    pub guard: Option<&'a Guard>,
    /// Every value known so far: the caller's, the defaults, and what earlier steps parsed.
    pub resolved: Resolved,
    /// The secret values the caller gave: hidden in logs and in every result shown.
    pub shown: Redactor,
    /// What every step goes through the gate with, fixed when the run starts: a value a step
    /// parses later (a `pre_exec` field, a page token) can never widen it.
    pub scope: Scope,
}

impl<'a> Run<'a> {
    /// A run of `name` with the values resolved for it.
    pub fn new(
        provider: &'a Provider,
        name: &'a str,
        resolved: Resolved,
        guard: Option<&'a Guard>,
    ) -> Run<'a> {
        let shown = Redactor::new(resolved.secret_values());
        let scope = Guard::scope(guard, provider, &resolved).into_owned();
        Run {
            provider,
            name,
            guard,
            resolved,
            shown,
            scope,
        }
    }

    /// Every secret known by now: the caller's, those earlier steps produced (a token from
    /// `configure_auth`), and the secret-named fields of `result`.
    pub fn secrets(&self, result: Option<&Value>) -> Redactor {
        let mut secrets = self.resolved.secret_values();
        if let Some(Value::Object(map)) = result {
            secrets.extend(
                map.iter()
                    .filter(|(k, _)| crate::secret::is_secret_name(k, self.provider))
                    .map(|(_, v)| params::value_to_param(v)),
            );
        }
        Redactor::new(secrets)
    }

    /// The boundary a run's outcome leaves through: a `test_auth` whose result says "not
    /// authenticated" fails, and an error is redacted of every secret known by now
    /// ([`Run::secrets`], with the secret-named fields of the result it reports) and names the
    /// provider and the action. The result itself is as the action produced it (see
    /// [`Run::show`]).
    pub fn finish(&self, outcome: Result<Value>) -> Result<Value> {
        outcome.and_then(|v| check_auth(self.name, v)).map_err(|e| {
            let secrets = self.secrets(e.details().get("result"));
            e.map_text(|t| secrets.redact(t))
                .context(&self.provider.name, self.name)
        })
    }

    /// A result as it may be shown: the caller's secrets redacted (a CLI echoing its key).
    /// Secrets an action produces (a fresh token) are what the caller asked for. (Only
    /// components' results are shown from inside a run.)
    pub fn show(&self, mut value: Value) -> Value {
        self.shown.redact_json(&mut value);
        value
    }
}

/// A `test_auth` whose result says "not authenticated" fails.
fn check_auth(action: &str, value: Value) -> Result<Value> {
    if action != "test_auth" {
        return Ok(value);
    }
    let status = value.get("status").and_then(Value::as_str);
    let flag = value.get("authenticated");
    let ok = match (status, flag) {
        (Some(status), _) => status == "authenticated",
        (None, Some(Value::Bool(b))) => *b,
        (None, Some(Value::String(s))) => {
            StatusMapper::default().map(s, Vocabulary::Auth) == "authenticated"
        }
        _ => true,
    };
    if ok {
        Ok(value)
    } else {
        Err(Error::new(
            ErrorKind::Authentication,
            format!("test_auth reports the provider is not authenticated: {value}"),
        )
        .with_detail("result", value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_auth_fails_only_when_its_result_says_not_authenticated() {
        assert!(check_auth("test_auth", json!({"status": "authenticated"})).is_ok());
        assert!(check_auth("test_auth", json!({"authenticated": true})).is_ok());
        assert!(check_auth("test_auth", json!({"ok": 1})).is_ok());
        assert!(check_auth("list_workers", json!({"authenticated": false})).is_ok());
        let err = check_auth("test_auth", json!({"authenticated": false})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Authentication);
        assert!(check_auth("test_auth", json!({"status": "expired"})).is_err());
    }

    #[test]
    fn an_error_leaves_redacted_of_step_secrets_and_result_fields_with_its_context() {
        let provider = Provider::from_json(
            r#"{"name":"p","type":"command","actions":{"test_auth":{"target":{"Command":"x"}}}}"#,
            std::path::Path::new("p.json"),
        )
        .unwrap();
        let mut resolved = Resolved::default();
        resolved
            .values
            .insert("api_key".into(), "key-123456".into());
        resolved.secret_names.insert("api_key".into());
        let run = Run::new(&provider, "test_auth", resolved, None);
        let result = json!({"authenticated": false, "token": "tok-abcdef", "k": "key-123456"});
        let secrets = run.secrets(Some(&result));
        let text = run.finish(Ok(result)).unwrap_err().to_json().to_string();
        assert!(
            !text.contains("key-123456") && !text.contains("tok-abcdef"),
            "{text}"
        );
        assert!(text.contains(r#""provider":"p""#), "{text}");
        assert_eq!(secrets.redact("tok-abcdef"), crate::secret::REDACTED);
        assert_eq!(
            run.show(json!({"k": "key-123456"})),
            json!({"k": crate::secret::REDACTED})
        );
    }
}
