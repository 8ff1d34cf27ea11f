"""``gpunet claim``: epoch rewards and fees from the reward distributor, with proofs.

Options work as in ``gpunet.cli.chain`` (see its docstring). The leaves and their
proofs come from the indexer (``--from-indexer``, ``GET /v1/rewards/{account}``) or
are given by hand.
"""

from __future__ import annotations

from typing import Annotated

import typer

from gpunet.cli.chain import AsJson, DataDir, Key, RpcUrl, open_chain, receipt_json
from gpunet.cli.console import out, print_json
from gpunet.cli.keys import KeysDir
from gpunet.errors import ValidationError
from gpunet.protocol.units import format_tokens


def claim(
    epoch: Annotated[int | None, typer.Option(help="Epoch of the leaf.")] = None,
    reward: Annotated[int | None, typer.Option(help="Leaf reward in base units.")] = None,
    fee: Annotated[int, typer.Option(help="Leaf fee in base units.")] = 0,
    proof: Annotated[
        list[str] | None, typer.Option(help="Proof hashes (hex), repeated or comma-separated.")
    ] = None,
    from_indexer: Annotated[
        str | None,
        typer.Option(
            "--from-indexer",
            help="Indexer URL: claim every unclaimed epoch it lists.",
            show_default=False,
        ),
    ] = None,
    account: Annotated[
        str | None, typer.Option(help="Account whose leaf it is. Default: the sender.")
    ] = None,
    rpc_url: RpcUrl = None,
    key: Key = None,
    keys_dir: KeysDir = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Claim epoch rewards and fees from the reward distributor.

    Give one leaf as the indexer published it (--epoch, --reward, --fee, --proof), or
    --from-indexer URL to claim every epoch the indexer has posted for the account
    and the distributor has not paid yet. Anyone may send a claim; the tokens go only
    to the leaf's account. Claimed rewards then vest over the deployment's
    reward_vest_s, fees after fee_vest_s.
    """
    chain = open_chain(rpc_url, key, keys_dir, data_dir)
    who = account or chain.sender
    if from_indexer:
        leaves = [
            leaf
            for leaf in _indexer_claims(from_indexer, who)
            if not chain.distributor.call("is_claimed", leaf[0], who)
        ]
    elif epoch is None or reward is None:
        raise ValidationError("--epoch/--reward", None, "give both, or --from-indexer URL")
    else:
        leaves = [(epoch, reward, fee, _proof(proof or []))]
    results = []
    for leaf_epoch, leaf_reward, leaf_fee, leaf_proof in leaves:
        receipt = chain.claim(leaf_epoch, who, leaf_reward, leaf_fee, leaf_proof)
        results.append(
            {
                "epoch": leaf_epoch,
                "reward": str(leaf_reward),
                "fee": str(leaf_fee),
                **receipt_json(receipt),
            }
        )
        if not as_json:
            out.print(
                f"claimed epoch {leaf_epoch}: {format_tokens(leaf_reward)} tokens, "
                f"fee {leaf_fee} (gas {receipt.gas_used:,})"
            )
    if as_json:
        print_json({"account": who, "claims": results})  # as the indexer lists them
    elif not results:
        out.print(f"nothing to claim for {who}")


def _proof(items: list[str]) -> list[bytes]:
    hashes = [h.strip() for item in items for h in item.split(",") if h.strip()]
    try:
        proof = [bytes.fromhex(h.removeprefix("0x")) for h in hashes]
    except ValueError:
        raise ValidationError("--proof", items, "proof hashes are 0x and 64 hex digits") from None
    if any(len(p) != 32 for p in proof):
        raise ValidationError("--proof", items, "each proof hash is 32 bytes (64 hex digits)")
    return proof


def _indexer_claims(url: str, account: str) -> list[tuple[int, int, int, list[bytes]]]:
    import httpx

    try:
        answer = httpx.get(f"{url.rstrip('/')}/v1/rewards/{account}", timeout=30)
        answer.raise_for_status()
        claims = answer.json()["claims"]
        return [
            (int(c["epoch"]), int(c["reward"]), int(c["fee"]), _proof(c["proof"]))
            for c in claims
            if c.get("status") == "posted"  # the others are not on chain (yet)
        ]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise ValidationError("--from-indexer", url, f"no usable reward list: {exc}") from None
