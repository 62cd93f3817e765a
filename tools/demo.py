"""End-to-end demo: the print service, a ZPL and an ESC/POS printer simulator, and one
agent per printer running the real firmware under the MicroPython unix port, all on
loopback over verified HTTPS, with push hints from the service's embedded MQTT broker.
Each agent registers, prints its claim ticket, is claimed by the owner, subscribes, and
prints one job the moment it is submitted; the demo shows the bytes arriving intact.

  ./demo.sh            (or: .venv/bin/python -m tools.demo [--keep])"""
import argparse
import hashlib
import os
import shutil
import sys
import time

from tools.hostrun import Agent, ROOT, claim, provision, wait_for, wait_job
from tools.printservice.client import Client
from tools.printservice.server import Service
from tools.printersim.preview import render_dir
from tools.printersim.server import PrinterSim

LABEL = (b"^XA^CI28^FO40,40^A0N,60,60^FDShip to: Dock 3^FS"
         b"^FO40,120^BCN,100,Y,N,N^FD0123456789^FS^FO40,280^BQN,2,5^FDQA,order-4711^FS^XZ")
RECEIPT = (b"\x1b@\x1ba\x01Corner Cafe\n\x1ba\x00"
           b"1 x Flat white      3.20\n1 x Croissant       2.10\n"
           b"------------------------\nTotal               5.30\n\n\n\x1dVB\x00")


def say(text):
    print(text, flush=True)


def sha(data):
    return hashlib.sha256(data).hexdigest()[:16]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=os.path.join(ROOT, "run", "demo"), help="working directory")
    ap.add_argument("--keep", action="store_true", help="leave everything running until Ctrl-C")
    args = ap.parse_args(argv)
    shutil.rmtree(args.dir, ignore_errors=True)
    os.makedirs(args.dir)
    svc = Service(os.path.join(args.dir, "service"), log=lambda m: say("  [service] " + m),
                  broker_port=0).start()
    say("service: %s/cloudprint (HTTPS with its own CA: %s)" % (svc.https_url, svc.certs["ca_der"]))
    say("push: embedded MQTT broker at %s (printers log in with their own credential)" % svc.mqtt_url)
    owner = Client(svc.http_url + "/cloudprint", svc.owner_key)
    printers = {"zpl": PrinterSim("zpl", os.path.join(args.dir, "zpl-printer")).start(),
                "escpos": PrinterSim("escpos", os.path.join(args.dir, "escpos-printer")).start()}
    agents = {}
    ok = False
    try:
        for lang, sim in printers.items():
            say("%s printer simulator at %s" % (lang, sim.address))
            flash = os.path.join(args.dir, "flash-" + lang)
            provision(flash, svc, mqtt_url=svc.mqtt_url)
            agents[lang] = Agent(flash, sim.address, board="host-" + lang)
            say("agent for the %s printer: micropython main.py --flash %s --board board_configs/host-%s.json"
                " --printer %s" % (lang, flash, lang, sim.address))
        for lang, agent in agents.items():
            code = claim(agent, owner, 30)
            say("\n--- %s agent console ---\n%s\n---" % (lang, agent.output))
            say("owner claimed the %s printer with code %s (read off its claim ticket)" % (lang, code))
        wait_for(lambda: len(owner.printers()) == 2, 10, "both printers")
        for lang, agent in agents.items():
            agent.wait_line(r"push: subscribed", 30)
        say("both agents subscribed to their push topics; polling is only the safety net now")
        time.sleep(1)
        ids = {}
        for p in owner.printers():
            for lang, agent in agents.items():
                with open(os.path.join(agent.flash_dir, "credentials.json")) as f:
                    if p["id"] in f.read():
                        ids[lang] = p["id"]
        t0 = time.monotonic()
        jobs = {"zpl": owner.submit(ids["zpl"], LABEL, "application/x-zpl", "shipping label"),
                "escpos": owner.submit(ids["escpos"], RECEIPT, "application/x-escpos", "cafe receipt")}
        say("\nsubmitted a ZPL label (%d bytes) and an ESC/POS receipt (%d bytes)" % (len(LABEL), len(RECEIPT)))
        ok = True
        for lang, job in jobs.items():
            done = wait_job(owner, job["id"], 60, agent=agents[lang])
            state = done["semanticState"]
            payload = LABEL if lang == "zpl" else RECEIPT
            printed = printers[lang].printer.printed[-1]
            intact = printed == payload
            ok = ok and intact and state["state"]["type"] == "DONE"
            say("%-7s job %s: %s, pages_printed=%s; printer printed sha256 %s, sent %s: %s"
                % (lang, done["id"][:8], state["state"]["type"], state.get("pages_printed"),
                   sha(printed), sha(payload), "intact" if intact else "DIFFERENT"))
            say("        submitted -> done in %.2f s (pushed; the safety poll is minutes away)"
                % (time.monotonic() - t0))
        say("\nwhat each printer received and printed: %s/*-printer/" % args.dir)
        for lang, sim in printers.items():
            for path in render_dir(sim.printer.record_dir):
                say("  preview: %s" % path)
        if args.keep:
            say("running; owner API key in %s/service/owner.key; Ctrl-C to stop" % args.dir)
            while True:
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for agent in agents.values():
            agent.stop()
        for sim in printers.values():
            sim.stop()
        svc.stop()
    say("demo %s" % ("passed: every job DONE, every byte intact" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
