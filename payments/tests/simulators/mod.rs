//! The Stripe simulators as test servers, each started on a free port and
//! killed when dropped: for the adapter's suite (`payments/tests/stripe.rs`)
//! and the server's crash test (`gateway/tests/payment_crash.rs`, which
//! includes this file). `.ci/run` installs them (`deploy/stripe/simulators.sh`).
#![allow(dead_code, reason = "each suite uses a part")]

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// A simulator process, killed when dropped.
pub(crate) struct Simulator {
    child: Child,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The command `name` from `$env`, the PATH, or `~/go/bin`.
fn find(name: &str, env: &str) -> Option<String> {
    if let Ok(path) = std::env::var(env) {
        return Some(path);
    }
    let home_go = std::env::var("HOME").ok().map(|h| format!("{h}/go/bin/{name}"));
    let on_path = std::env::var("PATH").ok()?.split(':').map(|dir| format!("{dir}/{name}")).find(|p| std::path::Path::new(p).is_file());
    on_path.or(home_go.filter(|p| std::path::Path::new(p).is_file()))
}

pub(crate) async fn start(name: &str, env: &str, args: impl Fn(u16) -> Vec<String>) -> Result<Option<Simulator>> {
    let Some(command) = find(name, env) else {
        eprintln!("{name}: skipped: not installed (set {env}, or run .ci/run, which installs it)");
        return Ok(None);
    };
    // A few tries: the free port may be taken between the probe and the start,
    // and a Python start on a busy two-core machine takes seconds.
    for _ in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child =
            Command::new(&command).args(args(port)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().with_context(|| command.clone())?;
        let mut sim = Simulator { child, addr: SocketAddr::from(([127, 0, 0, 1], port)) };
        for _ in 0..600 {
            if tokio::net::TcpStream::connect(sim.addr).await.is_ok() {
                return Ok(Some(sim));
            }
            if sim.child.try_wait()?.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    bail!("{name} did not start listening in three tries of 30 s")
}

/// localstripe, stateful, from an empty state.
pub(crate) async fn localstripe() -> Result<Option<Simulator>> {
    start("localstripe", "LOCALSTRIPE", |port| vec!["--port".into(), port.to_string(), "--from-scratch".into()]).await
}

/// Makes an object through the simulator's API directly: its id.
pub(crate) async fn make_object(sim: &Simulator, path: &str, form: Vec<(&'static str, String)>) -> Result<String> {
    let request = reqwest::Client::new().post(format!("http://{}{path}", sim.addr)).bearer_auth("sk_test_dispatch").form(&form);
    let body: serde_json::Value = request.send().await?.json().await?;
    body["id"].as_str().map(str::to_owned).with_context(|| format!("no id in {body}"))
}

pub(crate) async fn new_customer(sim: &Simulator) -> Result<String> {
    make_object(sim, "/v1/customers", vec![("email", "customer@example.com".into())]).await
}

/// A payment method for a card of `number`, on nobody's file yet.
pub(crate) async fn new_card(sim: &Simulator, number: &str) -> Result<String> {
    let form = vec![
        ("type", "card".into()),
        ("card[number]", number.into()),
        ("card[exp_month]", "12".into()),
        ("card[exp_year]", "2034".into()),
        ("card[cvc]", "123".into()),
    ];
    make_object(sim, "/v1/payment_methods", form).await
}
