//! A step's output: parsed by the component's `parse` hook or the step's rules, and its
//! statuses normalized (the component's `map-status` hook, the provider's table, the
//! built-in one).

use serde_json::Value;

use super::{Engine, Run};
use crate::error::Result;
use crate::provider::{Action, Provider};
use crate::status::{StatusMapper, Vocabulary};

impl Engine {
    /// Parses a step's raw output: the component's `parse` hook when it has one for this
    /// action (`name`; `None` for pre/post steps), otherwise the step's rules (or the output
    /// as JSON or text without rules).
    pub(super) async fn parse_output(
        &self,
        run: &Run<'_>,
        step: &Action,
        name: Option<&str>,
        output: String,
    ) -> Result<Value> {
        if let (Some(name), Some(guard)) = (name, run.guard)
            && let Some(hooks) = guard.parser(name)
        {
            let (hooks, name) = (hooks.clone(), name.to_string());
            return super::hooks::blocking(move || hooks.parse(&name, &output)).await;
        }
        match step.rules()? {
            Some(rules) => rules.apply(&output),
            None => Ok(serde_json::from_str(output.trim()).unwrap_or(Value::String(output))),
        }
    }

    /// Status normalization of the run's result: the component's `map-status` hook when it
    /// has one, then the provider's table, then the built-in one. Only worker and
    /// authentication results have standard statuses.
    pub(super) async fn normalize(&self, run: &Run<'_>, value: &mut Value) -> Result<()> {
        let flag = run
            .provider
            .actions
            .get(run.name)
            .and_then(|a| a.normalize_status);
        let Some(vocabulary) = Vocabulary::for_flagged_action(run.name, flag) else {
            return Ok(());
        };
        let mut table = run.provider.status_map.clone();
        table.extend(self.mapped_statuses(run, value).await?);
        StatusMapper::new(&table).normalize(value, vocabulary);
        Ok(())
    }

    /// Parses saved output with an action's rules, exactly as a run would (`cpi parse`).
    pub fn parse_saved(provider: &Provider, action_name: &str, output: &str) -> Result<Value> {
        let action = provider.action(action_name)?;
        let mut value = match action.rules()? {
            Some(rules) => rules.apply(output),
            None => Ok(Value::String(output.to_string())),
        }
        .map_err(|e| e.context(&provider.name, action_name))?;
        // Only rules that can yield a `status` have one to normalize.
        if let Some(vocabulary) =
            Vocabulary::for_flagged_action(action_name, action.normalize_status)
            && action.rules()?.is_some_and(|r| r.may_yield_status())
        {
            StatusMapper::new(&provider.status_map).normalize(&mut value, vocabulary);
        }
        Ok(value)
    }
}
