"""The Merkle tree of one epoch's rewards, as the RewardDistributor contract checks it.

Each account that earned something in an epoch gets one leaf, ``(epoch, account,
reward, fee)``. Its hash is OpenZeppelin's double hash, the one the contract computes::

    leaf = keccak256(keccak256(abi.encode(uint256 epoch, address account,
                                          uint256 reward, uint256 fee)))

``abi.encode`` of these four static types is four 32-byte big-endian words, the address
left-padded with zeros; it is written by hand here because it is several times faster
than a general encoder at 100,000 leaves (a test compares it with ``eth_abi.encode``).
Hashing twice means a 64-byte inner node can never be passed off as a leaf.

Shape: leaves are ordered by their hash, so the tree does not depend on the order the
accounts came in. An inner node is ``keccak256(min(a, b) || max(a, b))`` (sorted pairs,
as snekmate's ``merkle_proof_verification`` verifies them, so a proof needs no left or
right flags), and a level with an odd number of nodes promotes its last node unchanged
to the next level; that node's proof simply has no sibling there. A tree of one leaf has
that leaf as its root and an empty proof.

Accounts are ``0x`` addresses compared case-insensitively and kept in lower case; one
account may appear once per tree (merge an operator's nodes before). An epoch in which
nobody earned anything has no tree: ``build_tree`` returns None and nothing is posted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from eth_hash.auto import keccak

from gpunet.errors import ValidationError

WORD_BYTES = 32
MAX_UINT256 = 2**256 - 1
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_ADDRESS_PAD = bytes(WORD_BYTES - 20)


def _backend_keccak() -> Callable[[bytes], bytes]:
    # eth_hash checks the argument's type on every call and settles on its backend at
    # the first; a tree makes three calls per leaf, so the hot loops call the settled
    # backend directly. Only bytes this module built reach it.
    keccak(b"")
    return keccak.hasher


_keccak = _backend_keccak()


def normalize_account(account: str) -> str:
    """``account`` as a lower-case ``0x`` address; any other text is a ValidationError."""
    if not isinstance(account, str) or _ADDRESS.fullmatch(account) is None:
        raise ValidationError("account", account, "must be a 0x address of 40 hex digits")
    return account.lower()


def _uint256(field: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UINT256:
        raise ValidationError(field, value, "must be an integer between 0 and 2**256 - 1")
    return value


def encode_leaf(epoch: int, account: str, reward: int, fee: int) -> bytes:
    """``abi.encode(uint256 epoch, address account, uint256 reward, uint256 fee)``."""
    epoch_word = _uint256("epoch", epoch).to_bytes(WORD_BYTES, "big")
    leaf = RewardLeaf(account, reward, fee)
    return _encode(epoch_word, leaf)


def leaf_hash(epoch: int, account: str, reward: int, fee: int) -> bytes:
    """The leaf the contract computes for a claim: keccak256 of keccak256 of the encoding."""
    return _keccak(_keccak(encode_leaf(epoch, account, reward, fee)))


def _encode(epoch_word: bytes, leaf: RewardLeaf) -> bytes:
    # The leaf is already checked: only the words are written here (the hot path).
    return b"".join(
        (
            epoch_word,
            _ADDRESS_PAD,
            bytes.fromhex(leaf.account[2:]),
            leaf.reward.to_bytes(WORD_BYTES, "big"),
            leaf.fee.to_bytes(WORD_BYTES, "big"),
        )
    )


def pair_hash(a: bytes, b: bytes) -> bytes:
    """An inner node: the keccak256 of the two children, smaller first."""
    return _keccak(a + b) if a <= b else _keccak(b + a)


def verify_proof(root: bytes, leaf: bytes, proof: Iterable[bytes]) -> bool:
    """Whether ``proof`` leads from ``leaf`` to ``root`` (snekmate's ``_verify``)."""
    node = leaf
    for sibling in proof:
        node = pair_hash(node, sibling)
    return node == root


# The name the shared chain spec uses.
verify = verify_proof


@dataclass(frozen=True)
class RewardLeaf:
    """What one account may claim for an epoch: emission ``reward`` and client ``fee``.

    ``account`` is stored in lower case, whatever case it was given in.
    """

    account: str
    reward: int
    fee: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "account", normalize_account(self.account))
        _uint256("reward", self.reward)
        _uint256("fee", self.fee)


def _next_level(level: list[bytes]) -> list[bytes]:
    upper = [pair_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        upper.append(level[-1])
    return upper


class RewardTree:
    """All levels of one epoch's tree, built once, so a proof costs O(log n)."""

    def __init__(self, epoch: int, leaves: Sequence[RewardLeaf]) -> None:
        if not leaves:
            raise ValidationError("leaves", [], "a reward tree needs at least one leaf")
        self.epoch = _uint256("epoch", epoch)
        epoch_word = epoch.to_bytes(WORD_BYTES, "big")
        hashed = sorted(
            ((_keccak(_keccak(_encode(epoch_word, leaf))), leaf) for leaf in _unique(leaves)),
            key=_first,
        )
        self._index = {leaf.account: i for i, (_, leaf) in enumerate(hashed)}
        self._leaves = tuple(leaf for _, leaf in hashed)
        levels = [[digest for digest, _ in hashed]]
        while len(levels[-1]) > 1:
            levels.append(_next_level(levels[-1]))
        self._levels = levels
        self._below_root = levels[:-1]

    @property
    def root(self) -> bytes:
        """The 32-byte root posted on chain."""
        return self._levels[-1][0]

    @property
    def leaves(self) -> tuple[RewardLeaf, ...]:
        """The leaves in tree order (by leaf hash)."""
        return self._leaves

    def __len__(self) -> int:
        return len(self._leaves)

    def __contains__(self, account: object) -> bool:
        return isinstance(account, str) and account.lower() in self._index

    def leaf(self, account: str) -> RewardLeaf:
        """The leaf of ``account``; a ValidationError if it has none this epoch."""
        return self._leaves[self._position(account)]

    def leaf_hash(self, account: str) -> bytes:
        """The hash of ``account``'s leaf, as the contract recomputes it from a claim."""
        return self._levels[0][self._position(account)]

    def proof(self, account: str) -> list[bytes]:
        """The sibling hashes from ``account``'s leaf up to the root, lowest first."""
        index = self._position(account)
        proof = []
        for level in self._below_root:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index >>= 1
        return proof

    def _position(self, account: str) -> int:
        index = self._index.get(account.lower()) if isinstance(account, str) else None
        if index is None:
            normalize_account(account)
            raise ValidationError("account", account, f"has no leaf in epoch {self.epoch}")
        return index


def _first(pair: tuple[bytes, RewardLeaf]) -> bytes:
    return pair[0]


def _unique(leaves: Sequence[RewardLeaf]) -> Sequence[RewardLeaf]:
    seen: set[str] = set()
    for leaf in leaves:
        if leaf.account in seen:
            raise ValidationError(
                "leaves", leaf.account, "appears twice; merge an account's leaves first"
            )
        seen.add(leaf.account)
    return leaves


def build_tree(epoch: int, leaves: Sequence[RewardLeaf]) -> RewardTree | None:
    """The epoch's tree, or None when no account earned anything (nothing to post)."""
    return RewardTree(epoch, leaves) if leaves else None
