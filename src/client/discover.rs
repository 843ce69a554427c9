//! `villas-controller discover [-r] [-c] [-t] [-u] [--timeout S]`: pings
//! every IC (unless filtered; reference daemons' too, see
//! `villas_client::Filter::pings`), then a table of every IC that
//! answered, one row per uuid: uuid, name, category/type, state, uptime,
//! managed_by.

use super::table::IcTable;
use super::{parse_seconds, print_line, ClientError, FilterArgs};
use std::time::Duration;
use tokio::time::Instant;
use villas_client::{Binding, Discovery, Filter, Session, Target};

/// `discover` arguments.
#[derive(Debug, clap::Args)]
pub struct DiscoverArgs {
    /// Which ICs to ping (default: every IC).
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Seconds to collect replies.
    #[arg(long, value_name = "S", default_value = "2", value_parser = parse_seconds)]
    pub timeout: f64,
}

/// Runs `discover`.
pub async fn run(args: DiscoverArgs, target: &Target) -> Result<(), ClientError> {
    let session = Session::open(target).await?;
    let table = collect_replies(&session, &args.filter.filter(), args.timeout, false).await;
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

/// Pings the ICs `filter` addresses ([`Discovery`]) and collects the
/// replies for `window` seconds (or until the one uuid answered) into a
/// table, one row per IC; with `print`, also prints each IC's first
/// reply as a JSON line as it arrives.
pub async fn collect_replies(
    session: &Session,
    filter: &Filter,
    window: f64,
    print: bool,
) -> Result<IcTable, ClientError> {
    let mut subscription = session.subscribe(&Binding::Everything).await?;
    let until = Instant::now() + Duration::from_secs_f64(window);
    let mut discovery = Discovery::start(session, &mut subscription, filter, until).await?;
    let mut table = IcTable::default();
    while let Some(reply) = discovery.next().await? {
        if print && reply.first {
            print_line(&reply.message.payload().to_string())?;
        }
        table.update(&reply.status);
    }
    Ok(table)
}
