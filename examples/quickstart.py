"""Quickstart: a grant bound to an agent's key, delegated to a sub-agent, checked call by call.

Run: python examples/quickstart.py  (README.md shows the same code).
"""

import time

from capkit import AgentKey, Invocation, Keyring, Proof, Verifier, mint
from capkit.caveats import Eq, Expires, Holder, Max, OneOf, Tools

now = int(time.time())
keyring = Keyring.generate()                                 # the person's root secret
planner, payer = AgentKey.generate(), AgentKey.generate()    # agent keys, in the agents' runtimes
grant = mint(keyring, Holder(planner.public_key),            # "pay the December rent", for the planner
             Tools("bank.transfer"), OneOf("recipient", ["landlord"]),
             Max("amount", 1250), Eq("currency", "USD"), Expires(now + 86400), location="bank")
token = grant.delegate(planner, payer.public_key, Expires(now + 600))  # narrower, usable by the payer only

verifier = Verifier(keyring, location="bank")                # in the bank's tool backend


def pay(**args):                                             # the payer's runtime signs each call
    call = Invocation("bank.transfer", args)
    return verifier.authorize(token, call, Proof.create(payer, token, call))


print(pay(recipient="landlord", amount=1250, currency="USD").explain())  # allowed
print(pay(recipient="mallory", amount=5000, currency="USD").explain())   # denied: recipient 'mallory' is not ...
