use clap::Parser;

fn main() {
    // Deployed as a Lambda bootstrap, the binary runs the handler it is told to.
    if let Some(function) = trailwatch::lambda::runtime::function_from_env() {
        let result = function
            .map_err(anyhow::Error::msg)
            .and_then(trailwatch::lambda::runtime::run);
        if let Err(e) = result {
            eprintln!("error: {e:#}");
            std::process::exit(trailwatch::cli::EXIT_ERROR);
        }
        return;
    }
    let cli = trailwatch::cli::Cli::parse();
    let code = match trailwatch::cli::run(cli) {
        Ok(code) => code,
        Err(e) if trailwatch::cli::is_closed_pipe(&e) => trailwatch::cli::EXIT_OK,
        Err(e) => {
            eprintln!("error: {e:#}");
            trailwatch::cli::EXIT_ERROR
        }
    };
    std::process::exit(code);
}
