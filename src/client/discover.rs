//! `villas-controller discover [-r] [-c] [-t] [-u] [--timeout S]`: pings
//! every IC (unless filtered; reference daemons' too, see
//! `Filter::pings`), then a table of every IC that answered, one row per
//! uuid: uuid, name, category/type, state, uptime, managed_by.

use super::session::Session;
use super::simulator::collect_replies;
use super::{parse_seconds, print_line, ClientError, Filter, Target};

/// `discover` arguments.
#[derive(Debug, clap::Args)]
pub struct DiscoverArgs {
    /// Which ICs to ping (default: every IC).
    #[command(flatten)]
    pub filter: Filter,
    /// Seconds to collect replies.
    #[arg(long, value_name = "S", default_value = "2", value_parser = parse_seconds)]
    pub timeout: f64,
}

/// Runs `discover`.
pub async fn run(args: DiscoverArgs, target: &Target) -> Result<(), ClientError> {
    let session = Session::open(target).await?;
    let table = collect_replies(&session, &args.filter, args.timeout, false).await;
    session.close().await;
    let table = table?;
    if table.is_empty() {
        return Err(ClientError::Failed(format!(
            "no IC answered within {} s",
            args.timeout
        )));
    }
    print_line(table.render().trim_end())?;
    eprintln!("villas-controller: {} IC(s) answered", table.len());
    Ok(())
}
