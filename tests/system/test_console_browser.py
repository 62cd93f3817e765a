"""The web console in a real headless Chromium (Debian's chromium and chromium-driver,
driven by Selenium), against the real service, the real agent under MicroPython and a
simulated label printer: sign up, claim the printer from its ticket's QR code, upload a
label, watch it go DONE without a reload, see its preview, and see the printer go STOPPED
with "paper out" when the simulator runs out, add a webhook and see its deliveries. A screenshot of each page is kept in
run/artifacts/console/ (CONSOLE_SCREENSHOTS names another folder)."""
import io
import os
import re

import pytest

from tests.system.conftest import service_secrets
from tests.unit.test_webhooks import Receiver
from tools.hostrun import Agent, ROOT, provision, wait_for
from tools.printersim.server import PrinterSim
from tools.printservice.server import Service

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SHOTS = os.environ.get("CONSOLE_SCREENSHOTS") or os.path.join(ROOT, "run", "artifacts", "console")
EMAIL, PASSWORD = "dock7@example.com", "labels all day long"
LABEL = (b"^XA^FO40,40^A0N,60,60^FDDock 7^FS^FO40,130^GB720,4,4^FS"
         b"^FO40,170^A0N,40,40^FDShip to: Acme Parts^FS^FO40,230^BCN,120^FD1Z999AA1^FS"
         b"^FO40,420^BQN,2,8^FDQA,https://example.com/track/1Z999AA1^FS^XZ")

pytestmark = pytest.mark.skipif(not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
                                reason="needs Debian's chromium and chromium-driver (tools/test_packages.sh "
                                       "installs them as root)")


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--window-size=1280,900", "--user-data-dir=%s" % (tmp_path / "chromium")):
        opts.add_argument(arg)
    opts.accept_insecure_certs = True  # the service's own CA; the agent verifies it, the browser need not
    driver = webdriver.Chrome(service=DriverService(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def site(tmp_path):
    svc = Service(str(tmp_path / "svc"), log=lambda m: None, broker_port=0, open_signup=True).start()
    yield svc
    svc.stop()


def shot(driver, name):
    os.makedirs(SHOTS, exist_ok=True)
    driver.save_screenshot(os.path.join(SHOTS, name + ".png"))


def text_of(driver, css):
    """The text shown in css now (read in one step: the live part may be swapped any time)."""
    return driver.execute_script("var e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css)


def test_a_person_claims_prints_and_watches_in_the_browser(tmp_path, site, browser, device_tree):
    from selenium.webdriver.common.by import By
    with PrinterSim("zpl", str(tmp_path / "printer")) as sim:
        flash = str(tmp_path / "flash")
        provision(flash, site, mqtt_url=site.mqtt_url, mqtt_keepalive_s=10)
        agent = Agent(flash, sim.address, tree=device_tree)
        receiver = Receiver()  # the app's webhook endpoint
        try:
            # the claim ticket's QR code holds the claim link: what a phone would open
            wait_for(lambda: sim.printer.printed, 30, "the claim ticket")
            ticket = sim.printer.printed[0].decode("latin-1")
            claim_url = re.search(r"\^FDQA,([^\^]+)\^FS", ticket).group(1)
            assert claim_url.startswith(site.https_url + "/cloudprint/claim?token=")

            browser.get(site.https_url + "/console/signup")
            shot(browser, "01-sign-up")
            browser.find_element(By.NAME, "email").send_keys(EMAIL)
            browser.find_element(By.NAME, "password").send_keys(PASSWORD)
            browser.find_element(By.NAME, "password2").send_keys(PASSWORD)
            browser.find_element(By.ID, "signup").click()
            wait_for(lambda: "No printers yet" in text_of(browser, "#live"), 10, "the empty printers page")
            browser.find_element(By.CSS_SELECTOR, "form.logout button").click()  # out, and in again
            wait_for(lambda: browser.find_elements(By.ID, "login"), 10, "the log-in page")
            browser.find_element(By.NAME, "email").send_keys(EMAIL)
            browser.find_element(By.NAME, "password").send_keys("not the password")
            browser.find_element(By.ID, "login").click()
            wait_for(lambda: "Wrong email or password" in text_of(browser, "#message"), 10, "the refusal")
            browser.find_element(By.NAME, "password").send_keys(PASSWORD)
            shot(browser, "02-log-in")
            browser.find_element(By.ID, "login").click()
            wait_for(lambda: "No printers yet" in text_of(browser, "#live"), 10, "the printers page again")

            browser.get(claim_url)
            wait_for(lambda: browser.find_elements(By.ID, "claim"), 10, "the claim page")
            assert "Add" in text_of(browser, "main") and EMAIL in text_of(browser, "main")
            shot(browser, "03-claim")
            browser.find_element(By.ID, "claim").click()
            agent.wait_line(r"claimed by " + re.escape(EMAIL), 30)
            wait_for(lambda: "online" in text_of(browser, "#printer") and "polling" not in text_of(browser, "#printer"),
                     30, "the printer online through push")
            shot(browser, "04-printer")

            label = tmp_path / "dock7.zpl"
            label.write_bytes(LABEL)
            browser.get(site.https_url + "/console/print")
            browser.find_element(By.NAME, "file").send_keys(str(label))
            browser.find_element(By.NAME, "title").send_keys("Dock 7 shipping label")
            shot(browser, "05-print-a-file")
            browser.find_element(By.ID, "print").click()
            # the jobs page is not reloaded: its live part updates itself
            wait_for(lambda: "DONE" in text_of(browser, "#jobs"), 60, "the label DONE on the jobs page")
            assert sim.printer.printed[-1] == LABEL
            wait_for(lambda: browser.execute_script(
                "var i = document.querySelector('#jobs img.preview'); return i && i.complete && i.naturalWidth;")
                == 812, 10, "the label's preview drawn")
            shot(browser, "06-jobs")

            sim.printer.fault("paper_out")
            browser.get(site.https_url + "/console/print")
            browser.find_element(By.NAME, "file").send_keys(str(label))
            browser.find_element(By.NAME, "title").send_keys("waits for paper")
            browser.find_element(By.ID, "print").click()
            wait_for(lambda: "paper out" in text_of(browser, "#jobs"), 60, "the job STOPPED for paper")
            browser.get(site.https_url + "/console/")
            wait_for(lambda: "STOPPED" in text_of(browser, "#printers")
                     and "paper out" in text_of(browser, "#printers"), 30, "the printer STOPPED, paper out")
            shot(browser, "07-printers-paper-out")
            sim.printer.clear("paper_out")
            wait_for(lambda: "IDLE" in text_of(browser, "#printers"), 60, "the printer IDLE again")
            browser.get(site.https_url + "/console/jobs")
            wait_for(lambda: text_of(browser, "#jobs").count("DONE") == 2, 60, "both labels DONE")
            assert sim.printer.printed[1:] == [LABEL, LABEL]  # each printed once
            refused = [e["message"] for e in browser.get_log("browser") if e["source"] in ("security", "javascript")]
            assert not refused, refused  # no script error, nothing the page's own policy blocked
            agent.kill()  # the power goes: the broker publishes the agent's last will
            browser.get(site.https_url + "/console/")
            wait_for(lambda: "offline" in text_of(browser, "#printers"), 30, "the printer offline")
            shot(browser, "08-printers-offline")
            browser.get(site.https_url + "/console/account")
            browser.find_element(By.NAME, "name").send_keys("warehouse app")
            shot(browser, "09-account")  # before the key is made: a screenshot holds no secret
            browser.find_element(By.CSS_SELECTOR, "form:has(input[value=new-key]) button").click()
            key = wait_for(lambda: text_of(browser, "#new-key"), 10, "the new API key, shown once")
            assert site.accounts.for_key(key) == EMAIL
            browser.get(site.https_url + "/console/account")
            assert key not in browser.page_source and "warehouse app" in text_of(browser, "#keys")  # shown once

            browser.get(site.https_url + "/console/webhooks")
            browser.find_element(By.NAME, "url").send_keys(receiver.url)
            browser.find_element(By.CSS_SELECTOR, "form:has(input[value=add]) button").click()
            secret = wait_for(lambda: text_of(browser, "#new-secret"), 10, "the webhook's secret, shown once")
            printer = site.store.all("printers", owner=EMAIL)[0]
            site.api.submit(EMAIL, printer, io.BytesIO(LABEL), "application/x-zpl", "after hours",
                            {"version": "1.0", "print": {}})  # the printer is off: one event, QUEUED
            wait_for(lambda: receiver.accepted()[0], 20, "the event at the app")
            browser.get(site.https_url + "/console/webhooks")
            assert secret not in browser.page_source and "200" in text_of(browser, "#webhooks")
            shot(browser, "10-webhooks")
            browser.find_element(By.LINK_TEXT, receiver.url).click()
            wait_for(lambda: "200" in text_of(browser, "#deliveries"), 10, "the delivery log")
            shot(browser, "11-webhook-deliveries")
        except Exception:
            print("PAGE", browser.current_url, text_of(browser, "main"))
            print("BROWSER LOG", browser.get_log("browser")[-10:])
            print("AGENT", agent.output[-3000:])
            raise
        finally:
            agent.stop()
            receiver.close()
        for secret in service_secrets(site):
            assert secret not in agent.output
        for name in ("01-sign-up", "02-log-in", "03-claim", "04-printer", "05-print-a-file", "06-jobs",
                     "07-printers-paper-out", "08-printers-offline", "09-account", "10-webhooks",
                     "11-webhook-deliveries"):
            assert os.path.getsize(os.path.join(SHOTS, name + ".png")) > 5000, name
