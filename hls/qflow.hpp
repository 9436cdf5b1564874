// The qflow HLS library: everything a generated top includes.
#ifndef QFLOW_HPP
#define QFLOW_HPP

#include "qflow_types.hpp"
#include "qflow_add.hpp"
#include "qflow_mvau.hpp"
#include "qflow_dwc.hpp"
#include "qflow_pool.hpp"
#include "qflow_stream.hpp"
#include "qflow_vvau.hpp"
#include "qflow_window.hpp"

#endif  // QFLOW_HPP
