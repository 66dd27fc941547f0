//! `cpi schema`: the provider file's JSON Schema.

use std::process::ExitCode;

use cpi::Result;

pub fn exec() -> Result<ExitCode> {
    print!("{}", cpi::schema::provider_schema_text());
    Ok(ExitCode::SUCCESS)
}
