//! `cloudco-cli`: the simulated CloudCo command-line tool (see `cpi_sim::cloudco`).
fn main() {
    std::process::exit(cpi_sim::cloudco::main(std::env::args_os()))
}
