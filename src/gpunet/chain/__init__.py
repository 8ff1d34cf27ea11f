"""The chain shell: gpunet's contracts deployed and used from Python.

Layout::

    errors.py     ChainError (a revert carries the contract's "module: reason")
    abi.py        calldata, return values, events and revert reasons (eth-abi)
    artifacts.py  compile each contract once; ABI + bytecode cached by source hash
    backend.py    the Backend protocol both chains implement, and Receipt
    inprocess.py  InProcessChain: py-evm in this process, state journaled to a data dir
    rpc.py        RpcChain: any EVM node over JSON-RPC (web3.py), signing with a local key
    config.py     the deployment config (TOML -> pydantic models)
    deploy.py     deploy every contract, mint the genesis pools, write the record
    client.py     Chain: typed methods (claim, stake, lock, supply, ...) over a Backend

Only ``protocol/`` is imported from the rest of gpunet; the indexer and the CLI use
this package through ``Chain``.
"""
