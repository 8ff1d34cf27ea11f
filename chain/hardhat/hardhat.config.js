// A local Hardhat node for gpunet's JSON-RPC tests: started by scripts/start-hardhat.sh.
// Chain id 31337 and the well-known test accounts (never use them on a real chain).
// Block gas limit raised so that the whole system deploys comfortably in one go.
module.exports = {
  networks: {
    hardhat: {
      chainId: 31337,
      blockGasLimit: 60_000_000,
      allowUnlimitedContractSize: false,
    },
  },
};
