//! The service manager's view of the daemon (sd_notify(3)): `READY=1` once
//! the transport and control socket are bound, the state is loaded and the
//! control loop runs (so a `Type=notify` unit's dependents, and
//! `systemctl start`, wait until `qu status` answers); `STOPPING=1` as
//! shutdown begins; `WATCHDOG=1` every half `WatchdogSec` while the runtime
//! runs. Without `NOTIFY_SOCKET` every call does nothing.
//!
//! The datagram is sent from the blocking pool: a service manager that
//! stops reading must not stall a runtime worker.

use std::time::Duration;

use sd_notify::NotifyState;

/// What the daemon tells the service manager.
enum Message {
    /// `READY=1` and a one-line `STATUS=` for `systemctl status`.
    Ready(String),
    Stopping,
    Watchdog,
}

/// Sends `msg`; a failure is logged, never fatal (the daemon serves
/// whether or not anyone listens).
async fn send(msg: Message) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let sent = tokio::task::spawn_blocking(move || match &msg {
        Message::Ready(status) => {
            let status = status.replace('\n', " ");
            sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(&status)])
        }
        Message::Stopping => sd_notify::notify(&[NotifyState::Stopping]),
        Message::Watchdog => sd_notify::notify(&[NotifyState::Watchdog]),
    })
    .await;
    match sent {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("cannot notify the service manager: {e}"),
        Err(e) => tracing::warn!("cannot notify the service manager: {e}"),
    }
}

/// `READY=1`, with `status` shown by `systemctl status`.
pub(super) async fn ready(status: String) {
    send(Message::Ready(status)).await;
}

/// `STOPPING=1`.
pub(super) async fn stopping() {
    send(Message::Stopping).await;
}

/// When the unit sets `WatchdogSec`, a task that sends `WATCHDOG=1` every
/// half period (sd_watchdog_enabled(3)); abort it at shutdown.
pub(super) fn spawn_watchdog() -> Option<tokio::task::JoinHandle<()>> {
    let period = sd_notify::watchdog_enabled()?;
    let every = (period / 2).max(Duration::from_millis(100));
    tracing::info!(
        "systemd watchdog: {} ms, pinging every {} ms",
        period.as_millis(),
        every.as_millis()
    );
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            send(Message::Watchdog).await;
        }
    }))
}
