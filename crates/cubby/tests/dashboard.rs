//! End to end, as root, in a real browser: Debian's headless `chromium`,
//! driven over WebDriver (`chromedriver`) with fantoccini. The dashboard at
//! `/ui` lists a project's tenants with status, URL and live stats; its
//! stop button stops one and the page and the event feed show it; delete
//! asks twice; a project token sees only its own tenants; and the page
//! logs no console error.
//!
//! `UPDATE_SCREENSHOTS=1` also writes the screenshot the README shows
//! (`docs/dashboard.png`); it is always written under the target dir.

mod support;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use support::{container, daemon, project};

/// A chromedriver on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; scripts/setup.sh --browser installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, url: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver's browser log (entries since the last read).
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({ "type": "browser" }).to_string()))
    }
}

async fn browser_log(client: &Client) -> Vec<Value> {
    match client.issue_cmd(BrowserLog).await.expect("read the browser log") {
        Value::Array(entries) => entries,
        other => panic!("the browser log is not a list: {other}"),
    }
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let caps = json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1440,900", format!("--user-data-dir={}", profile.display())],
        },
        "goog:loggingPrefs": { "browser": "ALL" },
    });
    let Value::Object(caps) = caps else { unreachable!() };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector).capabilities(caps).connect(&driver.url).await.expect("a chromium session")
}

/// Waits for a CSS selector to match, with what the page shows on failure.
async fn wait_for(client: &Client, css: &str) -> fantoccini::elements::Element {
    match client.wait().at_most(Duration::from_secs(30)).for_element(Locator::Css(css)).await {
        Ok(element) => element,
        Err(e) => {
            let text = client.find(Locator::Css("body")).await.unwrap().text().await.unwrap_or_default();
            panic!("`{css}` never showed ({e}); the page said:\n{text}");
        }
    }
}

async fn count(client: &Client, css: &str) -> usize {
    client.find_all(Locator::Css(css)).await.unwrap().len()
}

async fn sign_in(client: &Client, token: &str) {
    client.find(Locator::Css("#token")).await.unwrap().send_keys(token).await.unwrap();
    client.find(Locator::Css("#login-form button")).await.unwrap().click().await.unwrap();
}

#[test]
fn the_dashboard_lists_stops_and_keeps_tenants_apart() {
    let Some(d) = daemon("the_dashboard_lists_stops_and_keeps_tenants_apart") else { return };
    let api = d.admin();
    let acme = project(&api, "acme");
    let alpha = container(&api, &acme, "alpha", "a");
    let beta = container(&api, &acme, "beta", "b");
    let zeta = project(&api, "zeta");
    let gamma = container(&api, &zeta, "gamma", "g");
    let zeta_token = api.create_token(zeta.id.as_str(), &Default::default()).unwrap().secret;
    let (alpha_row, beta_row) = ("tr[data-name=\"alpha\"]", "tr[data-name=\"beta\"]");

    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // The page itself needs no token and holds no data; it allows only
    // its own script and this API.
    let page = cubby_testkit::http_get(d.api_addr, &format!("{}/ui", d.api));
    assert_eq!(page.status, 200);
    assert!(page.header("content-security-policy").is_some_and(|c| c.contains("script-src 'self'")), "{page:?}");
    assert!(!page.body.contains("alpha") && !page.body.contains(acme.id.as_str()));

    rt.block_on(async {
        let client = browser(&driver, profile.path()).await;
        client.goto(&format!("{}/ui", d.api)).await.unwrap();
        assert_eq!(client.title().await.unwrap(), "Cubby");

        // Control for the console check at the end: an error the page logs
        // does reach this test.
        client.execute("console.error('control: the log reaches the test')", vec![]).await.unwrap();
        let log = browser_log(&client).await;
        assert!(log.iter().any(|e| e["message"].as_str().is_some_and(|m| m.contains("control:"))), "{log:?}");

        // A wrong token is refused with a message, and nothing is listed.
        sign_in(&client, "cubby_wrong").await;
        let notice = wait_for(&client, "#notice:not([hidden])").await;
        assert!(notice.text().await.unwrap().contains("not valid"), "the page says why");
        assert_eq!(count(&client, "#tenants tbody tr").await, 0);
        let _ = browser_log(&client).await; // the refused call's 401 is expected

        // The admin token: pick acme, whose two tenants run, with stats.
        sign_in(&client, &d.token).await;
        let picker = wait_for(&client, "#project-picker:not([hidden]) select").await;
        picker.select_by_value(acme.id.as_str()).await.unwrap();
        wait_for(&client, &format!("{alpha_row}[data-status=\"running\"]")).await;
        wait_for(&client, &format!("{beta_row}[data-status=\"running\"]")).await;
        assert_eq!(count(&client, "tr[data-name=\"gamma\"]").await, 0, "zeta's tenant is not in acme's list");
        let url = client.find(Locator::Css(&format!("{alpha_row} td:nth-child(3) a"))).await.unwrap();
        assert_eq!(url.text().await.unwrap(), alpha.url, "the tenant's URL, as a link");
        client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::XPath("//tr[@data-name='alpha']/td[5][contains(., 'MiB')]"))
            .await
            .expect("alpha's memory shows in the table");

        // Stop alpha from the page: it stops, the page and the feed say so,
        // and beta is untouched.
        client
            .find(Locator::Css(&format!("{alpha_row} button[data-action=\"stop\"]")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for(&client, &format!("{alpha_row}[data-status=\"stopped\"]")).await;
        assert_eq!(api.container(alpha.id.as_str()).unwrap().status, cubby_model::ContainerStatus::Stopped);
        assert_eq!(api.container(beta.id.as_str()).unwrap().status, cubby_model::ContainerStatus::Running);
        let stopped = format!("#events li[data-type=\"container.stopped\"][data-container=\"{}\"]", alpha.id);
        let line = wait_for(&client, &stopped).await.text().await.unwrap();
        assert!(line.contains("alpha"), "the feed names the tenant: {line}");

        // A tenant's usage charts.
        client.find(Locator::Css(&format!("{beta_row} a.name"))).await.unwrap().click().await.unwrap();
        wait_for(&client, "#detail:not([hidden]) #charts svg.chart").await;
        assert_eq!(count(&client, "#charts svg.chart").await, 4);
        assert_eq!(client.find(Locator::Css("#detail-name")).await.unwrap().text().await.unwrap(), "beta");

        let png = client.screenshot().await.unwrap();
        std::fs::write(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png"), &png).unwrap();
        if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
            std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/dashboard.png"), &png).unwrap();
        }

        // Delete asks twice; the second click deletes beta and only beta.
        let delete = format!("{beta_row} button[data-action=\"delete\"]");
        client.find(Locator::Css(&delete)).await.unwrap().click().await.unwrap();
        let confirm = wait_for(&client, &format!("{delete}.confirm")).await;
        assert_eq!(api.container(beta.id.as_str()).unwrap().status, cubby_model::ContainerStatus::Running);
        confirm.click().await.unwrap();
        client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::XPath("//tbody[not(tr[@data-name='beta'])]"))
            .await
            .expect("beta's row goes");
        let gone = d.admin().raw("GET", &format!("/api/v1/containers/{}", beta.id), None).unwrap();
        assert_eq!(gone.status, 404);
        assert_eq!(api.container(gamma.id.as_str()).unwrap().status, cubby_model::ContainerStatus::Running);

        // zeta's token: gamma shows (the control), acme's tenants do not.
        client.find(Locator::Css("#signout")).await.unwrap().click().await.unwrap();
        wait_for(&client, "#login:not([hidden])").await;
        sign_in(&client, &zeta_token).await;
        wait_for(&client, "tr[data-name=\"gamma\"][data-status=\"running\"]").await;
        assert_eq!(count(&client, alpha_row).await, 0, "another project's tenant is not shown");
        assert_eq!(count(&client, "#project option").await, 1, "a project token lists its own project only");

        let errors: Vec<Value> = browser_log(&client).await.into_iter().filter(|e| e["level"] == "SEVERE").collect();
        assert!(errors.is_empty(), "the page logged errors: {errors:?}");
        client.close().await.unwrap();
    });
}
