use clap::Parser;

fn main() {
    let cli = trailwatch::cli::Cli::parse();
    let code = match trailwatch::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            trailwatch::cli::EXIT_ERROR
        }
    };
    std::process::exit(code);
}
