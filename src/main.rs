use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A Kubernetes operator for Ray clusters, and the renderer of its Helm chart.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the RayCluster CustomResourceDefinition as YAML.
    #[command(after_help = "Example:\n  ray-operator crd | kubectl apply -f -")]
    Crd,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", ray_operator::api::crd_yaml());
            ExitCode::SUCCESS
        }
    }
}
