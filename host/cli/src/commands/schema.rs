//! `cpi schema`: the provider file's JSON Schema.

use std::process::ExitCode;

use cpi::Result;

use crate::output::out;

pub fn exec() -> Result<ExitCode> {
    out!("{}", cpi_authoring::schema::provider_schema_text());
    Ok(ExitCode::SUCCESS)
}
