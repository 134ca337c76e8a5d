#!/usr/bin/env python3
"""Regenerates examples/data/saas_deals.csv, the open book bundled with the demo.

A seeded draw (standard library only): stage mix weighted towards the top of the funnel,
lognormal amounts, ages up to about twice the stage's mean dwell, five owners, forecast
categories by stage and a few manual probability overrides."""
import csv, math, random, sys

rng = random.Random(20261122)
stages = [("Prospecting", 9, 70), ("Qualification", 12, 55), ("Discovery", 15, 40),
          ("Demo", 10, 30), ("Proposal", 20, 28), ("Negotiation", 16, 17)]
owners = ["Alice Chen", "Bruno Silva", "Chloe Martin", "Deepak Rao", "Eva Novak"]
category = {"Prospecting": "pipeline", "Qualification": "pipeline", "Discovery": "pipeline",
            "Demo": "best case", "Proposal": "best case", "Negotiation": "commit"}
out = csv.writer(sys.stdout, lineterminator="\n")
out.writerow(["id", "stage", "amount", "age", "owner", "category", "currency", "probability"])
n = 0
for name, mean, count in stages:
    for _ in range(count):
        n += 1
        amount = round(24000 * math.exp(0.8 * rng.gauss(0, 1)), -2)
        age = round(rng.expovariate(1 / mean) * 1.2, 1)
        prob = ""
        if name == "Negotiation" and rng.random() < 0.2:
            prob = rng.choice(["0.9", "0.95", "0.5"])
        out.writerow([f"OPP-{n:04d}", name, f"{amount:.2f}", age, rng.choice(owners), category[name], "EUR", prob])
