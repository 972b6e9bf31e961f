//! The map in a real browser: start `dispatch demo` on a free port, open the
//! page in headless Chromium (driven over the DevTools protocol), wait until
//! contractors and at least one matched job show in the side panel, and save
//! a screenshot to `target/demo-map.png`.
//!
//! Needs Chromium (`apt-get install chromium`; `.ci/run` installs it). Where
//! it is missing the test says so and passes, except under CI, where it fails.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

fn chromium() -> Option<PathBuf> {
    let from_env = std::env::var_os("CHROMIUM").map(PathBuf::from);
    from_env
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].map(PathBuf::from))
        .find(|p| p.exists())
}

/// Reads a child's output lines until one contains `marker`; returns that line.
async fn line_with(child: &mut Child, stderr: bool, marker: &str) -> Result<String> {
    let pipe: Box<dyn tokio::io::AsyncRead + Unpin + Send> =
        if stderr { Box::new(child.stderr.take().context("stderr")?) } else { Box::new(child.stdout.take().context("stdout")?) };
    let mut lines = BufReader::new(pipe).lines();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if line.contains(marker) {
                return Ok::<_, anyhow::Error>(line);
            }
        }
        bail!("output ended before {marker:?}")
    })
    .await
    .map_err(|_| anyhow!("no {marker:?} within 60 s"))??;
    // Keep draining so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(found)
}

struct Cdp {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    next: u64,
}

impl Cdp {
    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).await?;
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.ws.next()).await.map_err(|_| anyhow!("{method}: no answer"))?;
            let Some(Ok(Message::Text(text))) = frame else { bail!("DevTools connection ended") };
            let v: Value = serde_json::from_str(text.as_str())?;
            if v["id"] == id {
                if let Some(err) = v.get("error") {
                    bail!("{method}: {err}");
                }
                return Ok(v["result"].clone());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_map_shows_contractors_and_matched_jobs_in_chromium() -> Result<()> {
    let Some(browser) = chromium() else {
        if std::env::var_os("CI").is_some() {
            bail!("Chromium is not installed; .ci/run should have installed it");
        }
        eprintln!("skipping the browser test: Chromium not found (apt-get install chromium)");
        return Ok(());
    };
    // A local tile server: any path answers with a small PNG, and requests are counted.
    let tile_requests = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tiles = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let tile_addr = tiles.local_addr()?;
    let counter = std::sync::Arc::clone(&tile_requests);
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A 1x1 grey PNG.
        let png = base64::engine::general_purpose::STANDARD
            .decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNoAAAAggCBd81ytgAAAABJRU5ErkJggg==")
            .unwrap_or_default();
        while let Ok((mut stream, _)) = tiles.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let png = png.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = stream.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n",
                    png.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&png).await;
            });
        }
    });
    let data = tempfile::tempdir()?;
    let mut demo = Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args(["demo", "--listen", "127.0.0.1:0", "--contractors", "80", "--job-every-secs", "0.5"])
        .arg("--tile-url")
        .arg(format!("http://{tile_addr}/{{z}}/{{x}}/{{y}}.png"))
        .arg("--data-dir")
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let map_line = line_with(&mut demo, false, "map: http://").await?;
    let url = map_line.split_whitespace().find(|w| w.starts_with("http://")).context("map URL")?.to_owned();

    let profile = tempfile::tempdir()?;
    let mut chrome = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,800",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let devtools = line_with(&mut chrome, true, "DevTools listening on").await?;
    let ws_url = devtools.split_whitespace().last().context("DevTools URL")?.to_owned();
    let (ws, _) = tokio_tungstenite::connect_async(ws_url).await?;
    let mut cdp = Cdp { ws, next: 0 };
    let target = cdp.call(None, "Target.createTarget", json!({"url": url})).await?;
    let attached = cdp.call(None, "Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true})).await?;
    let session = attached["sessionId"].as_str().context("session")?.to_owned();

    // Wait for the side panel: contractors online and at least one job matched.
    let read = "JSON.stringify({online: +document.getElementById('online').textContent, \
                matched: +document.getElementById('matched-total').textContent, \
                status: document.getElementById('status').textContent, \
                paying: [...document.querySelectorAll('#jobs li')].filter((li) => li.textContent.includes(' · payment ')).length})";
    let mut last = Value::Null;
    for _ in 0..120 {
        let r = cdp.call(Some(&session), "Runtime.evaluate", json!({"expression": read, "returnByValue": true})).await?;
        if let Some(text) = r["result"]["value"].as_str() {
            last = serde_json::from_str(text)?;
            let paying = last["paying"].as_f64() > Some(0.0);
            if last["online"].as_f64() > Some(0.0) && last["matched"].as_f64() > Some(0.0) && last["status"] == "live" && paying {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(last["online"].as_f64() > Some(0.0), "no contractors on the map: {last}");
    assert!(last["matched"].as_f64() > Some(0.0), "no matched job on the map: {last}");
    assert!(last["paying"].as_f64() > Some(0.0), "the job panel shows no payment state: {last}");
    assert!(tile_requests.load(std::sync::atomic::Ordering::Relaxed) > 0, "a configured tile URL is fetched");

    // Let a second delta draw, then keep a picture of it.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let shot = cdp.call(Some(&session), "Page.captureScreenshot", json!({"format": "png"})).await?;
    let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().context("screenshot")?)?;
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("demo-map.png");
    std::fs::write(&out, &png)?;
    eprintln!("screenshot: {} ({} bytes); figures {last}", out.display(), png.len());
    let _ = chrome.kill().await;
    let _ = demo.kill().await;
    Ok(())
}
