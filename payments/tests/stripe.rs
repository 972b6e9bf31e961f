//! The Stripe adapter against two simulators, each started here on a free
//! port (skipped, saying why, where one is not installed; `.ci/run`
//! installs both):
//! - **localstripe** (PyPI), stateful (started `--from-scratch`: it would
//!   otherwise load what any earlier run left in its pickle): the whole flow — a hold, a capture, two
//!   partial refunds, a void, 3-D Secure, a decline — and the crash cases: a
//!   call whose answer was lost is reconciled to the processor's object,
//!   found by its metadata, and never made twice. It has no Transfers.
//! - **stripe-mock** (Stripe's own, Go), stateless: every request the
//!   adapter sends, Transfers included, has the shape Stripe's OpenAPI
//!   specification accepts.

mod simulators;

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use dispatch_engine::payment::Currency;
use dispatch_engine::{CustomerId, JobId, Money};
use dispatch_payments::{Call, CallKey, Card, Outcome, PaymentProvider, Step, StripeConfig, StripeProvider, execute, reconcile};
use simulators::{Simulator, localstripe, make_object, new_card, new_customer, start};

fn stripe_config(sim: &Simulator) -> StripeConfig {
    // Scoped as a city's: every key and object carries the scope, and the reconciler finds objects by it.
    StripeConfig {
        api_base: format!("http://{}", sim.addr),
        secret_key: "sk_test_dispatch".into(),
        timeout_ms: 5_000,
        scope: "des-moines".into(),
        onboarding_url: "https://app.example/payouts".into(),
    }
}

fn stripe_at(sim: &Simulator) -> Result<StripeProvider> {
    Ok(StripeProvider::new(stripe_config(sim))?)
}

/// A customer with a card of `number` on file.
async fn card_on_file(sim: &Simulator, number: &str) -> Result<Card> {
    let customer = new_customer(sim).await?;
    let method = new_card(sim, number).await?;
    make_object(sim, &format!("/v1/payment_methods/{method}/attach"), vec![("customer", customer.clone())]).await?;
    Ok(Card { customer, payment_method: method })
}

fn prepare(job: u64, card: &Card, amount: u64) -> Call {
    Call::Prepare { key: CallKey::new(JobId(job), Step::Authorize), card: card.clone(), amount: Money(amount), currency: Currency::USD }
}

fn authorize(job: u64, intent: &str) -> Call {
    Call::Authorize { key: CallKey::new(JobId(job), Step::Authorize), intent: intent.into(), off_session: false }
}

/// A hold for `job`: prepared (its id recorded, in the engine), then authorized.
async fn hold(stripe: &StripeProvider, job: u64, card: &Card, amount: u64) -> Result<(String, Outcome)> {
    let Outcome::Prepared { intent } = execute(stripe, &prepare(job, card, amount)).await? else { bail!("not prepared") };
    let outcome = execute(stripe, &authorize(job, &intent)).await?;
    Ok((intent, outcome))
}

/// How many captured charges the simulator holds of each of `intents`.
async fn charges(sim: &Simulator, card: &Card, intents: &[&str]) -> Result<Vec<usize>> {
    let url = format!("http://{}/v1/charges?customer={}&limit=100", sim.addr, card.customer);
    let list: serde_json::Value = reqwest::Client::new().get(url).bearer_auth("sk_test_dispatch").send().await?.json().await?;
    let all = list["data"].as_array().context("a list of charges")?;
    Ok(intents.iter().map(|intent| all.iter().filter(|c| c["payment_intent"] == **intent && c["captured"] == true).count()).collect())
}

/// How many refunds the simulator holds of `intent`.
async fn refunds_of(sim: &Simulator, intent: &str) -> Result<usize> {
    let url = format!("http://{}/v1/refunds?payment_intent={intent}&limit=100", sim.addr);
    let list: serde_json::Value = reqwest::Client::new().get(url).bearer_auth("sk_test_dispatch").send().await?.json().await?;
    Ok(list["data"].as_array().context("a list")?.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_on_localstripe_charges_once_whatever_is_lost() -> Result<()> {
    let Some(sim) = localstripe().await? else { return Ok(()) };
    let stripe = stripe_at(&sim)?;
    let card = card_on_file(&sim, "4242424242424242").await?;

    // Hold, capture less than held, two partial refunds (two steps, two keys).
    let (intent, held) = hold(&stripe, 1, &card, 12_000).await?;
    ensure!(held == Outcome::Held { intent: intent.clone(), amount: Money(12_000) }, "{held:?}");
    // A webhook naming the hold finds its job by the hold's metadata, in this city's scope only.
    ensure!(stripe.job_of(&intent).await? == Some(JobId(1)));
    let ames = StripeProvider::new(StripeConfig { scope: "ames".into(), ..stripe_config(&sim) })?;
    ensure!(ames.job_of(&intent).await?.is_none(), "another city's processor does not claim it");
    let capture = Call::Capture { key: CallKey::new(JobId(1), Step::Capture), intent: intent.clone(), amount: Money(11_000) };
    ensure!(execute(&stripe, &capture).await? == Outcome::Captured { intent: intent.clone(), amount: Money(11_000) });
    for n in 1..=2 {
        let refund = Call::Refund { key: CallKey::new(JobId(1), Step::Refund(n)), intent: intent.clone(), amount: Money(1_500) };
        let made = execute(&stripe, &refund).await?;
        ensure!(matches!(made, Outcome::Refunded { amount: Money(1_500), .. }), "{made:?}");
        ensure!(stripe.confirm(&refund).await? == Some(made), "the refund is found by its metadata");
    }
    ensure!(charges(&sim, &card, &[&intent]).await? == [1], "charged once");

    // The crash cases, where localstripe (which keeps no idempotency keys) would
    // charge twice if the call were simply made again: each call was made and
    // its answer lost; the reconciler reads what it did and does not make it again.
    let Outcome::Prepared { intent: second } = execute(&stripe, &prepare(2, &card, 5_000)).await? else { bail!("not prepared") };
    let lost_hold = authorize(2, &second);
    let first = execute(&stripe, &lost_hold).await?;
    ensure!(reconcile(&stripe, &lost_hold).await? == first, "the same hold, read back");
    let lost_capture = Call::Capture { key: CallKey::new(JobId(2), Step::Capture), intent: second.clone(), amount: Money(5_000) };
    execute(&stripe, &lost_capture).await?;
    ensure!(reconcile(&stripe, &lost_capture).await? == Outcome::Captured { intent: second.clone(), amount: Money(5_000) });
    let lost_refund = Call::Refund { key: CallKey::new(JobId(2), Step::Refund(1)), intent: second.clone(), amount: Money(700) };
    let refunded = execute(&stripe, &lost_refund).await?;
    ensure!(reconcile(&stripe, &lost_refund).await? == refunded, "the refund, found by its metadata");
    ensure!(charges(&sim, &card, &[&intent, &second]).await? == [1, 1], "two jobs, one charge each");
    ensure!(refunds_of(&sim, &second).await? == 1, "one refund");
    let account = stripe.make_payee(dispatch_engine::ContractorId(9)).await?;
    let lost_payout = Call::Payout {
        key: CallKey::new(JobId(2), Step::Payout),
        destination: account.clone(),
        amount: Money(4_000),
        currency: Currency::USD,
    };
    let paid = execute(&stripe, &lost_payout).await?;
    ensure!(reconcile(&stripe, &lost_payout).await? == paid, "the transfer, found by its metadata");
    ensure!(transfers_to(&sim, &account).await? == [4_000], "one transfer");
    // A hold never asked of the card is not there, and the reconciler asks once.
    let Outcome::Prepared { intent: third } = execute(&stripe, &prepare(3, &card, 2_000)).await? else { bail!("not prepared") };
    ensure!(stripe.confirm(&authorize(3, &third)).await?.is_none());
    ensure!(matches!(reconcile(&stripe, &authorize(3, &third)).await?, Outcome::Held { .. }));

    // A hold let go; one that needs 3-D Secure; one the card refuses.
    let void = Call::Void { key: CallKey::new(JobId(3), Step::Void), intent: third };
    ensure!(matches!(execute(&stripe, &void).await?, Outcome::Voided { .. }));
    ensure!(matches!(stripe.confirm(&void).await?, Some(Outcome::Voided { .. })));
    let secure = card_on_file(&sim, "4000000000003220").await?;
    let (_, action) = hold(&stripe, 4, &secure, 3_000).await?;
    ensure!(matches!(&action, Outcome::ActionRequired { client_secret, .. } if client_secret.contains("_secret")), "{action:?}");
    let refused = card_on_file(&sim, "4000000000000341").await?;
    let (_, declined) = hold(&stripe, 5, &refused, 3_000).await?;
    ensure!(matches!(declined, Outcome::Declined { .. }), "{declined:?}");

    // A capture of a hold that does not exist is refused, and not worth retrying.
    let over = Call::Capture { key: CallKey::new(JobId(4), Step::Capture), intent: "pi_missing".into(), amount: Money(1) };
    let err = execute(&stripe, &over).await.err().context("refused")?;
    ensure!(!err.is_retryable(), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_has_a_shape_stripes_specification_accepts() -> Result<()> {
    let Some(sim) = start("stripe-mock", "STRIPE_MOCK", |port| vec!["-http-addr".into(), format!("127.0.0.1:{port}")]).await? else {
        return Ok(());
    };
    let stripe = stripe_at(&sim)?;
    let card = Card { customer: "cus_123".into(), payment_method: "pm_123".into() };
    let key = |step| CallKey::new(JobId(9), step);
    let calls = [
        prepare(9, &card, 12_000),
        authorize(9, "pi_123"),
        Call::Authorize { key: key(Step::ExtraHold(1)), intent: "pi_123".into(), off_session: true },
        Call::Capture { key: key(Step::Capture), intent: "pi_123".into(), amount: Money(11_000) },
        Call::Void { key: key(Step::Void), intent: "pi_123".into() },
        Call::Refund { key: key(Step::Refund(1)), intent: "pi_123".into(), amount: Money(500) },
        Call::Payout { key: key(Step::Payout), destination: "acct_123".into(), amount: Money(9_000), currency: Currency::USD },
    ];
    let saved = stripe
        .save_card(&dispatch_payments::CardSetup {
            customer: "cus_123".into(),
            payment_method: "pm_123".into(),
            key: "dispatch-customer-1-card-1".into(),
        })
        .await;
    ensure!(saved.is_ok(), "saving a card: {saved:?}");
    let made = stripe.make_customer(CustomerId(1)).await;
    ensure!(made.as_ref().is_ok_and(|id| !id.is_empty()), "making a customer: {made:?}");
    let looked = stripe.confirm_card("seti_123").await;
    ensure!(looked.is_ok(), "confirming a card: {looked:?}");
    let payee = stripe.make_payee(dispatch_engine::ContractorId(7)).await;
    ensure!(payee.as_ref().is_ok_and(|id| id.starts_with("acct_")), "making a payout account: {payee:?}");
    let status = stripe.payee_status("acct_123").await;
    ensure!(status.is_ok(), "a payout account's status (and its onboarding link): {status:?}");
    for call in &calls {
        // stripe-mock answers fixtures, so only refusals of the request itself matter here.
        let made = execute(&stripe, call).await;
        ensure!(made.is_ok(), "{:?}: {made:?}", call.key().step);
        let looked = stripe.confirm(call).await;
        ensure!(looked.is_ok(), "confirm {:?}: {looked:?}", call.key().step);
    }
    Ok(())
}

/// Reads one HTTP request from `listener`, answers 200: its headers (lower-cased names) and body.
async fn one_request(listener: &tokio::net::TcpListener) -> Result<(Vec<(String, String)>, Vec<u8>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut socket, _) = listener.accept().await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_len, length) = loop {
        let n = socket.read(&mut chunk).await?;
        ensure!(n > 0, "the connection closed mid-request");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>()))
                .transpose()?
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while buf.len() < head_len + length {
        let n = socket.read(&mut chunk).await?;
        ensure!(n > 0, "the connection closed mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await?;
    let head = String::from_utf8_lossy(&buf[..head_len]).to_string();
    let headers =
        head.lines().skip(1).filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())).collect();
    Ok((headers, buf[head_len..head_len + length].to_vec()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localstripes_signed_webhooks_verify_and_a_wrong_secret_does_not() -> Result<()> {
    use dispatch_payments::webhook::{Notice, TOLERANCE_SECS, WebhookError, notice, verify};
    let Some(sim) = localstripe().await? else { return Ok(()) };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let secret = "whsec_dispatch_test";
    let form = [
        ("url", format!("http://{}/webhooks/stripe", listener.local_addr()?)),
        ("secret", secret.to_owned()),
        ("events[]", "payment_intent.succeeded".to_owned()),
    ];
    let registered = reqwest::Client::new().post(format!("http://{}/_config/webhooks/dispatch", sim.addr)).form(&form).send().await?;
    ensure!(registered.status().is_success(), "{}", registered.status());
    let stripe = stripe_at(&sim)?;
    let card = card_on_file(&sim, "4242424242424242").await?;
    let (intent, _) = hold(&stripe, 7, &card, 4_000).await?;
    execute(&stripe, &Call::Capture { key: CallKey::new(JobId(7), Step::Capture), intent, amount: Money(4_000) }).await?;

    let (headers, body) =
        tokio::time::timeout(Duration::from_secs(20), one_request(&listener)).await.context("no webhook within 20 s")??;
    let signature = headers.iter().find(|(k, _)| k == "stripe-signature").map(|(_, v)| v.clone()).context("no Stripe-Signature")?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    ensure!(verify(&signature, &body, &["whsec_old", secret], now, TOLERANCE_SECS).is_ok(), "signed under the endpoint's secret");
    ensure!(verify(&signature, &body, &["whsec_old"], now, TOLERANCE_SECS) == Err(WebhookError::BadSignature));
    let mut tampered = body.clone();
    tampered.push(b' ');
    ensure!(verify(&signature, &tampered, &[secret], now, TOLERANCE_SECS) == Err(WebhookError::BadSignature));
    ensure!(matches!(notice(&body), Ok(Notice::Ignored { kind, .. }) if kind == "payment_intent.succeeded"));
    Ok(())
}

/// Payment entries kept in memory.
#[derive(Default)]
struct Entries(std::sync::Mutex<Vec<dispatch_payments::journal::JournalEntry>>);

#[async_trait::async_trait]
impl dispatch_payments::journal::PaymentJournal for Entries {
    async fn write(&self, entry: dispatch_payments::journal::JournalEntry) -> Result<(), dispatch_payments::journal::JournalError> {
        self.0.lock().map_err(|e| dispatch_payments::journal::JournalError(e.to_string()))?.push(entry);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_payment_on_localstripe_from_hold_through_extras_refund_and_dispute() -> Result<()> {
    use dispatch_engine::payment::{PaymentState, PaymentTerms};
    use dispatch_engine::{ContractorId, Timestamp};
    use dispatch_payments::{Hold, JobPayment, PaymentError, Via};
    let Some(sim) = localstripe().await? else { return Ok(()) };
    let stripe = stripe_at(&sim)?;
    let card = card_on_file(&sim, "4242424242424242").await?;
    let journal = Entries::default();
    let via = Via { provider: &stripe, journal: &journal };
    let hour = |h: i64| Timestamp(1_800_000_000_000 + h * 3_600_000);
    let mut pay = JobPayment::new(JobId(20), Money(10_000), PaymentTerms::default(), card.clone())?;
    ensure!(pay.hold(via, hour(0), false).await? == Hold::Placed);
    pay.propose_extras(Money(3_000), "a new valve".into())?;
    ensure!(pay.approve_extras(via, hour(1)).await? == Hold::Placed, "a fresh hold for 13 000");
    pay.complete(via, hour(2)).await?;
    pay.refund(via, Money(2_000), hour(3)).await?;
    pay.open_dispute(hour(4))?;
    pay.resolve_dispute(via, Money(1_000), hour(5)).await?;
    ensure!(pay.machine().state() == PaymentState::Captured);
    ensure!((pay.machine().captured(), pay.machine().refunded()) == (Money(13_000), Money(3_000)));
    // At localstripe: the first hold let go, the fresh one charged once, two refunds of it.
    let list: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{}/v1/payment_intents?limit=100", sim.addr))
        .bearer_auth("sk_test_dispatch")
        .send()
        .await?
        .json()
        .await?;
    let mine: Vec<&serde_json::Value> =
        list["data"].as_array().context("a list")?.iter().filter(|pi| pi["metadata"]["dispatch_job"] == "20").collect();
    let statuses: Vec<&str> = mine.iter().filter_map(|pi| pi["status"].as_str()).collect();
    ensure!(
        statuses.iter().filter(|s| **s == "canceled").count() == 1 && statuses.iter().filter(|s| **s == "succeeded").count() == 1,
        "{statuses:?}"
    );
    let charged = mine.iter().find(|pi| pi["status"] == "succeeded").and_then(|pi| pi["id"].as_str()).context("the charged hold")?;
    ensure!(charges(&sim, &card, &[charged]).await? == [1], "one charge");
    ensure!(refunds_of(&sim, charged).await? == 2, "two refunds");
    // The contractor's payout account (localstripe with Connect: ready at once), then the payout to it.
    let account = stripe.make_payee(ContractorId(7)).await?;
    ensure!(stripe.payee_status(&account).await? == dispatch_payments::PayeeStatus::Ready, "{account}");
    ensure!(matches!(pay.pay_out(via, ContractorId(7), &account, hour(5)).await, Err(PaymentError::NotDue(_))), "not before the window");
    pay.pay_out(via, ContractorId(7), &account, hour(80)).await?;
    ensure!(pay.machine().state() == PaymentState::PaidOut);
    let payout = pay.machine().release().context("released")?.payout;
    let transfers = transfers_to(&sim, &account).await?;
    ensure!(transfers == [payout.0], "one transfer of the payout: {transfers:?}");
    // A webhook naming the transfer finds its job, in this city's scope only.
    let sent: serde_json::Value = get(&sim, &format!("/v1/transfers?destination={account}")).await?;
    let transfer = sent["data"][0]["id"].as_str().context("the transfer")?.to_owned();
    ensure!(stripe.job_of(&transfer).await? == Some(JobId(20)));
    ensure!(ames_of(&sim)?.job_of(&transfer).await?.is_none());
    ensure!(stripe.job_of("tr_nobody_made").await?.is_none(), "another account's transfer: none, not an error");
    Ok(())
}

/// Amounts transferred to `account`, newest first.
async fn transfers_to(sim: &Simulator, account: &str) -> Result<Vec<u64>> {
    let list: serde_json::Value = get(sim, &format!("/v1/transfers?destination={account}&limit=100")).await?;
    Ok(list["data"].as_array().context("a list")?.iter().filter_map(|t| t["amount"].as_u64()).collect())
}

/// A GET of the simulator's API.
async fn get(sim: &Simulator, path: &str) -> Result<serde_json::Value> {
    Ok(reqwest::Client::new().get(format!("http://{}{path}", sim.addr)).bearer_auth("sk_test_dispatch").send().await?.json().await?)
}

/// Another city's processor on the same account.
fn ames_of(sim: &Simulator) -> Result<StripeProvider> {
    Ok(StripeProvider::new(StripeConfig { scope: "ames".into(), ..stripe_config(sim) })?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_is_saved_for_off_session_holds_on_localstripe() -> Result<()> {
    use dispatch_payments::{CardSaved, CardSetup};
    let Some(sim) = localstripe().await? else { return Ok(()) };
    let stripe = stripe_at(&sim)?;
    // The customer carries whose it is (localstripe keeps no idempotency
    // keys, so that a second ask is the same customer is the sandbox's to show).
    let customer = stripe.make_customer(CustomerId(9)).await?;
    let url = format!("http://{}/v1/customers/{customer}", sim.addr);
    let made: serde_json::Value = reqwest::Client::new().get(url).bearer_auth("sk_test_dispatch").send().await?.json().await?;
    ensure!(made["metadata"]["dispatch_customer"] == "9" && made["metadata"]["dispatch_scope"] == "des-moines", "{made}");
    let setup = |payment_method: String, n: u32| CardSetup {
        customer: customer.clone(),
        payment_method,
        key: format!("dispatch-customer-9-card-{n}"),
    };

    let visa = new_card(&sim, "4242424242424242").await?;
    let saved = stripe.save_card(&setup(visa.clone(), 1)).await?;
    let CardSaved::Saved { card: on_file } = saved else { bail!("not saved: {saved:?}") };
    ensure!(on_file == Card { customer: customer.clone(), payment_method: visa });
    // The saved card takes a hold. (localstripe's confirm takes no `off_session`;
    // stripe-mock checks that request's shape.)
    let Outcome::Prepared { intent } = execute(&stripe, &prepare(30, &on_file, 8_000)).await? else { bail!("not prepared") };
    ensure!(matches!(execute(&stripe, &authorize(30, &intent)).await?, Outcome::Held { .. }));

    let secure = new_card(&sim, "4000000000003220").await?;
    let waiting = stripe.save_card(&setup(secure, 2)).await?;
    let CardSaved::ActionRequired { setup: seti, client_secret } = waiting else { bail!("no authentication asked: {waiting:?}") };
    ensure!(!client_secret.is_empty());
    // Until the customer authenticates, the setup still waits.
    ensure!(matches!(stripe.confirm_card(&seti).await?, CardSaved::ActionRequired { .. }));
    let refused = new_card(&sim, "4000000000000002").await?;
    ensure!(matches!(stripe.save_card(&setup(refused, 3)).await?, CardSaved::Declined { .. }));
    Ok(())
}
