//! Log output. A line about a cluster starts with `<cluster name>,<namespace>`
//! (the seed's recipe `kubectl logs ... | grep example-cluster2,ray` relies on
//! it); `--log-format json` writes one JSON object a line instead.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber; `RUST_LOG` overrides the default level.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,kube=warn,tower=warn,hyper=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.event_format(ClusterPrefixed).init(),
    }
}

/// `<cluster>,<namespace> <time> <LEVEL> <message> <other fields>`, or
/// `<time> <LEVEL> <message>` for lines about no cluster.
struct ClusterPrefixed;

#[derive(Default)]
struct Fields {
    cluster: Option<String>,
    namespace: Option<String>,
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "cluster" => self.cluster = Some(value.to_string()),
            "namespace" => self.namespace = Some(value.to_string()),
            "message" => self.message = value.to_string(),
            name => {
                use std::fmt::Write;
                let _ = write!(self.rest, " {name}={value}");
            }
        }
    }
}

impl<S, N> FormatEvent<S, N> for ClusterPrefixed
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let (Some(cluster), Some(namespace)) = (&fields.cluster, &fields.namespace) {
            write!(writer, "{cluster},{namespace} ")?;
        }
        let now = k8s_openapi::jiff::Timestamp::now();
        writeln!(
            writer,
            "{now:.3} {:>5} {}{}",
            event.metadata().level(),
            fields.message,
            fields.rest
        )
    }
}
