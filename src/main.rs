use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A Kubernetes operator for Ray clusters, and the renderer of its Helm chart.
#[derive(Parser)]
#[command(
    version,
    about,
    long_about = None,
    after_help = "Examples:\n  ray-operator render example-cluster -n ray --set clusterOnly=true | kubectl apply -f -\n  ray-operator crd | kubectl apply -f -\n  ray-operator diff ray-operator --set operatorOnly=true\n  ray-operator run --namespace ray"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the RayCluster CustomResourceDefinition as YAML.
    #[command(after_help = "Example:\n  ray-operator crd | kubectl apply -f -")]
    Crd,
    /// Diff the rendered manifests against the live cluster, like `kubectl diff`.
    #[command(
        after_help = "Exit status: 0 no differences, 1 differences (printed), 2 an error.\n\nExamples:\n  ray-operator diff example-cluster -n ray --set clusterOnly=true\n  ray-operator diff ray-operator --set operatorOnly=true -f my-values.yaml"
    )]
    Diff(ray_operator::chart::render::RenderArgs),
    /// Run the operator: reconcile every RayCluster it may see.
    #[command(
        after_help = "Examples:\n  ray-operator run                      # all namespaces\n  ray-operator run --namespace ray      # only namespace ray\n  KUBECONFIG=.cluster/kubeconfig ray-operator run --health-port 8080"
    )]
    Run(RunArgs),
    /// Render the Helm chart's manifests like `helm template`, without Helm.
    Render(ray_operator::chart::render::RenderArgs),
    /// Print the JSON schema of the chart's values (charts/ray/values.schema.json).
    #[command(hide = true)]
    ValuesSchema,
}

/// Flags of `ray-operator run`.
#[derive(clap::Args)]
struct RunArgs {
    /// Act only in this namespace (a namespaced operator). Unset: all namespaces.
    #[arg(long, env = "RAY_OPERATOR_POD_NAMESPACE")]
    namespace: Option<String>,
    /// Reconciles of different RayClusters that may run at once. (Their writes
    /// to the API server share the bound of --writes-in-flight.)
    #[arg(long, default_value_t = 16)]
    concurrency: u16,
    /// Writes to the API server in flight at once, over all clusters (pods,
    /// Services, statuses, Events). Each holds a connection, about 40 KiB.
    #[arg(long, default_value_t = ray_operator::operator::writer::WRITES_IN_FLIGHT as u16,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    writes_in_flight: u16,
    /// Port of /healthz, /readyz and /metrics; 0 turns them off.
    #[arg(long, default_value_t = 8080)]
    health_port: u16,
    /// Log lines as text (prefixed `<cluster>,<namespace>`) or JSON.
    #[arg(long, value_enum, default_value = "text")]
    log_format: ray_operator::operator::telemetry::logging::LogFormat,
    /// Hold a leader Lease before acting, so several replicas are safe.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Scale workers from each Ray head's demand. Off: clusters hold
    /// minWorkers, and an unreachable GCS is not an error.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    autoscaler: bool,
    /// Milliseconds between two reads of a cluster's GCS.
    #[arg(long, default_value_t = 1000)]
    autoscaler_interval_ms: u64,
    /// Milliseconds between two reads of a quiet cluster's GCS: one with no
    /// queued demand, nothing launching or draining, every worker in Ray.
    /// New demand on it waits half of this on average before it is seen.
    #[arg(long, default_value_t = 1000)]
    autoscaler_quiet_interval_ms: u64,
    /// Seconds a running head's GCS may stay unreachable before the cluster
    /// restarts (AutoscalingExceptionRecovery).
    #[arg(long, default_value_t = 30)]
    gcs_grace_seconds: u64,
    /// Check that Ray runs: a cluster is Running only while its head's GCS
    /// answers and its minimum workers are alive in Ray. Off only where pods
    /// run no Ray (kwok's fake nodes).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    ray_health: bool,
    /// Honour `spec.gcsAddress`, the address of a Ray GCS outside the cluster.
    /// A test aid, off by default: otherwise the operator dials only each
    /// cluster's own head Service, so whoever may create a RayCluster cannot
    /// make the operator connect (and send Ray tokens) anywhere.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    allow_gcs_address: bool,
    /// Namespace of a cluster-scoped operator's leader Lease. Every
    /// cluster-scoped operator of the Kubernetes cluster shares it, whatever
    /// namespace each runs in, so two releases never act on a RayCluster at once.
    #[arg(long, default_value = "kube-system")]
    lease_namespace: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", ray_operator::api::crd_yaml());
            ExitCode::SUCCESS
        }
        Command::Run(args) => run(args),
        Command::Diff(args) => ray_operator::chart::diff::run(&args),
        Command::Render(args) => ray_operator::chart::render::run(&args),
        Command::ValuesSchema => {
            print!("{}", ray_operator::chart::values::schema_json());
            ExitCode::SUCCESS
        }
    }
}

/// Worker threads of the operator's runtime. It spends its time waiting on
/// the API server (12% of one core while creating 4,000 pods), and every
/// thread costs a stack and, with glibc, a malloc arena of its own; tokio's
/// default of one per core would be 64 on a large node.
const RUNTIME_THREADS: usize = 2;

fn run(args: RunArgs) -> ExitCode {
    ray_operator::operator::telemetry::logging::init(args.log_format);
    ray_operator::operator::telemetry::memory::single_arena();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_THREADS)
        .enable_all()
        .build()
        .expect("tokio runtime");
    // Spawned, not run on the main thread: a worker polls it, and the main
    // thread's stack stays as small as it starts.
    let operator = runtime.spawn(async move {
        let client = kube::Client::try_default()
            .await
            .map_err(|e| format!("connecting to Kubernetes: {e}"))?;
        let health = match args.health_port {
            0 => None,
            port => Some(
                tokio::net::TcpListener::bind(("0.0.0.0", port))
                    .await
                    .map_err(|e| format!("--health-port {port}: {e}"))?,
            ),
        };
        let identity = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| {
                format!("{}-{}", ray_operator::naming::OPERATOR, std::process::id())
            });
        let settings = ray_operator::operator::Settings {
            lease_namespace: args.lease_namespace,
            namespace: args.namespace.filter(|ns| !ns.is_empty()),
            concurrency: args.concurrency,
            writes_in_flight: args.writes_in_flight.into(),
            leader_elect: args.leader_elect,
            identity,
            autoscaler: ray_operator::operator::autoscaler::task::Settings {
                enabled: args.autoscaler,
                interval: std::time::Duration::from_millis(args.autoscaler_interval_ms.max(100)),
                quiet_interval: std::time::Duration::from_millis(
                    args.autoscaler_quiet_interval_ms.max(100),
                ),
                grace: std::time::Duration::from_secs(args.gcs_grace_seconds),
                ray_health: args.ray_health,
                allow_gcs_address: args.allow_gcs_address,
            },
        };
        ray_operator::operator::run(client, settings, health).await
    });
    let result = runtime
        .block_on(operator)
        .unwrap_or_else(|e| Err(format!("the operator task failed: {e}")));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
