// RAII helpers for root integration tests: throwaway network namespaces,
// veth pairs, test users and child processes, all removed again on every
// exit path (destructors) and, for leftovers of a crashed run, by
// cleanup_stale() at start-up.
//
// One header per concern under lab/; this one includes them all.
//
// Declare objects in dependency order (users, namespaces, veths, then
// processes): destructors run in reverse, so processes die first.
#pragma once

#include "lab/cleanup.hpp"
#include "lab/netns.hpp"
#include "lab/process.hpp"
#include "lab/shell.hpp"
#include "lab/users.hpp"
#include "lab/veth.hpp"
