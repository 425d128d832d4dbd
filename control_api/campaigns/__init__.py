"""Outbound campaigns (issue 17): the campaign as data and the dialler's sans-IO core.

- `model.py`: the `POST /v1/campaigns` body as msgspec Structs, validated (`parse_campaign`).
- `lifecycle.py`: the campaign's states and their transitions, the contacts' dispositions and
  the retry rules (`record_attempt`), as pure functions.
- `windows.py`: calling windows in a time zone (wall-clock, DST-correct).
- `pacing.py`: which contacts to dial now and when to look again (`plan`), on an injected now.
- `rows.py`: the campaign, contacts and attempts in the store (migration `0008_campaigns`),
  and the dialler's lease on a contact (`claim`, `finish`, `recover`), safe across nodes on
  PostgreSQL.
- `queries.py`: what the control API (`control_api.campaigns_api`) reads and changes: one
  campaign (locked for a lifecycle move), a tenant's campaigns, progress counts, contact pages.
- `leases.py`: the dialler's other moves on contacts (a lease given back, renewed, contacts
  ended as do_not_call) and the campaigns it works on.
- `dialled.py`: one dialled call followed to its disposition (sans-IO).
- `notify.py`: the campaign events into the outbox, and the API's ring to the node's dialler.
- `dnc.py`: the tenant's do-not-call list (migration `0009_dnc`): what the dialler reads, what
  `/v1/dnc` changes, and a new campaign's listed contacts ended as do_not_call.
- `contacts_csv.py`: contacts from a CSV file (`POST /v1/campaigns/{id}/contacts`): the
  header, the numbers normalised to E.164, each row imported or rejected with its reason
  (sans-IO).
- `imports.py`: those contacts added to a draft campaign in the store, under its row lock.

`model`, `lifecycle`, `windows` and `pacing` do no I/O and import only `core` (and each other);
`rows.py` is their side in the store, and the node's dialler (`voicenode.dialler`) drives both.
"""
