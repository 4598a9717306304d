// libmuster, the Muster client SDK: everything in one include.
#pragma once

#include "muster/balancer.h"
#include "muster/call.h"
#include "muster/discovery.h"
#include "muster/heartbeater.h"
#include "muster/instance.h"
#include "muster/registry.h"
