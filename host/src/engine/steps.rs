//! The steps of one attempt: `pre_exec`, the action (or each of its pages), `post_exec`; each
//! step's call built from its target and made through the [`crate::exec::Gate`].

use serde_json::Value;

use super::hooks::check_component_tls;
use super::{Engine, Run};
use crate::error::{Error, Result};
use crate::exec::http::{Request, Tls};
use crate::params;
use crate::provider::{Action, Paginate};
use crate::target::{self, Invocation};

/// Pages followed at most when `paginate.max_pages` does not say.
const DEFAULT_MAX_PAGES: u32 = 100;

impl Engine {
    /// Runs an action's steps with the run's values and normalizes the result's statuses.
    /// Each step's parsed fields reach the next step exactly as they were produced; the
    /// result is not redacted and errors are not yet (see [`Run::finish`]).
    pub(super) async fn steps(&self, run: &mut Run<'_>, action: &Action) -> Result<Value> {
        let provider = run.provider;
        provider.error_rules()?;
        run.resolved.check(provider, action)?;
        for (_, step) in params::steps(action) {
            step.rules()?;
        }
        for step in &action.pre_exec {
            run.resolved.enter_step(step, provider)?;
            let out = self.step(run, step, None).await?;
            if let Value::Object(map) = &out {
                run.resolved.add_step_outputs(map, provider);
            }
        }
        run.resolved.enter_step(action, provider)?;
        let mut result = match &action.paginate {
            None => self.step(run, action, Some(run.name)).await?,
            Some(paginate) => self.pages(run, action, paginate).await?,
        };
        for step in &action.post_exec {
            if let Value::Object(map) = &result {
                run.resolved.add_step_outputs(map, provider);
            }
            run.resolved.enter_step(step, provider)?;
            let out = self.step(run, step, None).await?;
            if let (Value::Object(result), Value::Object(out)) = (&mut result, out) {
                result.extend(out);
            }
        }
        self.normalize(run, &mut result).await?;
        Ok(result)
    }

    /// Runs one step: build the invocation, execute it, parse the output. `name` is the
    /// action's name for the action itself (`None` for pre/post steps).
    async fn step(&self, run: &Run<'_>, step: &Action, name: Option<&str>) -> Result<Value> {
        let output = self.execute(run, step).await?;
        self.parse_output(run, step, name, output).await
    }

    /// Runs the action and returns one list of every page's items: the page parameter follows
    /// what each answer names as the next page, unless the user chose a page themselves.
    async fn pages(
        &self,
        run: &mut Run<'_>,
        action: &Action,
        paginate: &Paginate,
    ) -> Result<Value> {
        if run.resolved.is_given(&paginate.param) {
            return self.step(run, action, Some(run.name)).await;
        }
        let first = run.resolved.values.get(&paginate.param).cloned();
        let outcome = self
            .follow_pages(run, action, paginate, first.clone())
            .await;
        // Later steps see the page the user's values selected, not the last one fetched.
        match first {
            Some(first) => run.resolved.values.insert(paginate.param.clone(), first),
            None => run.resolved.values.shift_remove(&paginate.param),
        };
        outcome
    }

    /// Fetches page after page from `first`, until one names no next page (or one seen
    /// already, which would never end), or `max_pages` is reached (an error).
    async fn follow_pages(
        &self,
        run: &mut Run<'_>,
        action: &Action,
        paginate: &Paginate,
        first: Option<String>,
    ) -> Result<Value> {
        let name = run.name;
        let max_pages = paginate.max_pages.unwrap_or(DEFAULT_MAX_PAGES).max(1);
        let mut items = Vec::new();
        let mut seen: std::collections::HashSet<String> = first.into_iter().collect();
        for page in 1..=max_pages {
            let output = self.execute(run, action).await?;
            let next = crate::parse::json::next_page(&paginate.next, &output)?;
            match self.parse_output(run, action, Some(name), output).await? {
                Value::Array(list) => items.extend(list),
                other => {
                    return Err(Error::provider(format!(
                        "{name} is paged, so each page must parse to a list, not {}",
                        cpi_contract::json_kind(&other)
                    )));
                }
            }
            match next {
                Some(next) if seen.insert(next.clone()) => {
                    tracing::info!("{name}: page {page} done; next {}={next}", paginate.param);
                    run.resolved.values.insert(paginate.param.clone(), next);
                }
                _ => return Ok(Value::Array(items)),
            }
        }
        Err(Error::provider(format!(
            "{name} has more than {max_pages} pages: narrow the query or raise paginate.max_pages"
        ))
        .with_detail("max_pages", max_pages))
    }

    /// Builds a step's invocation and runs it through the gate under the run's scope; the
    /// raw output.
    async fn execute(&self, run: &Run<'_>, step: &Action) -> Result<String> {
        let resolved = &run.resolved;
        let errors = step.error_rules()?.then(run.provider.error_rules()?);
        let invocation = target::build(&step.target, &resolved.values, &|n| {
            resolved.dash_ok.contains(n)
        })?;
        tracing::info!(call = %invocation.describe(&run.shown), "running");
        let started = std::time::Instant::now();
        let scope = &run.scope;
        let output = match invocation {
            Invocation::Command { argv } => {
                self.gate
                    .command(scope, &argv, &step.accept_exit, &errors)
                    .await?
                    .stdout
            }
            Invocation::Http {
                method,
                url,
                headers,
                body,
            } => {
                let tls = Tls::from_values(&resolved.values)?;
                check_component_tls(run.guard, &tls)?;
                let req = Request {
                    method: method.wire_name(),
                    url: &url,
                    headers: &headers,
                    body: body.as_deref().map(str::as_bytes),
                    tls: &tls,
                };
                self.gate.send(scope, &req, &errors).await?.body
            }
        };
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            bytes = output.len(),
            output = %run.shown.redact(&crate::exec::excerpt(&output, 4096)),
            "finished"
        );
        Ok(output)
    }
}
