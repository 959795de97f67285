"""Quickstart: mint a grant for one task, attenuate it for a sub-agent, verify calls.

Run: python examples/quickstart.py  (README.md shows the same code).
"""

import time

from capkit import Invocation, Keyring, Verifier, mint
from capkit.caveats import Eq, Expires, Max, OneOf, Tools

now = int(time.time())
keyring = Keyring.generate()                      # the person's root secret
grant = mint(keyring,                             # "pay the December rent"
             Tools("bank.transfer"), OneOf("recipient", ["landlord"]),
             Max("amount", 1250), Eq("currency", "USD"),
             Expires(now + 86400), location="bank")
sub_agent = grant.attenuate(Expires(now + 600))   # narrower, no key needed
token = sub_agent.serialize()                     # "capkit_..." travels with each call

verifier = Verifier(keyring)                      # in the bank's tool backend
ok = verifier.authorize(token, Invocation("bank.transfer",
                        {"recipient": "landlord", "amount": 1250, "currency": "USD"}))
bad = verifier.authorize(token, Invocation("bank.transfer",
                         {"recipient": "mallory", "amount": 5000, "currency": "USD"}))
print(ok.explain())   # allowed
print(bad.explain())  # denied: recipient 'mallory' is not one of 'landlord' (caveat 2, ...); amount 5000 exceeds ...
