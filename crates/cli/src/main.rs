use anyhow::Context;
use clap::Parser;
use queue_core::CommonConfig;

/// trawl's operator CLI. Reads the same environment as the services (DATABASE_URL, REDIS_URL,
/// QUEUE_NAME, ...) and works without the API.
#[derive(Parser)]
#[command(name = "trawl", version)]
struct Config {
    #[command(flatten)]
    common: CommonConfig,
    #[command(subcommand)]
    command: trawl_cli::Command,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let services = config.common.services().context("invalid configuration")?;
    let output = trawl_cli::execute(&services, &config.common.database_url, config.command).await?;
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        super::Config::command().debug_assert();
    }
}
