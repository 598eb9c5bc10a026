package agent

import "github.com/prometheus/client_golang/prometheus"

// metrics are the agent's Prometheus series, in its own registry.
type metrics struct {
	reg          *prometheus.Registry
	declarations prometheus.Counter
	conditional  *prometheus.CounterVec
	results      *prometheus.CounterVec
	orphans      prometheus.Counter
	repairs      *prometheus.CounterVec
	duration     prometheus.Histogram
	stale        prometheus.Counter
	skipped      prometheus.Counter
	// underlayPeers counts the peers of the last underlay check by status.
	underlayPeers    *prometheus.GaugeVec
	underlayDuration prometheus.Histogram
	underlayMTU      prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		declarations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netloom_agent_declarations_total", Help: "Declarations received (declare-state).",
		}),
		conditional: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netloom_agent_conditional_declarations_total",
			Help: "Conditional host declarations (same_as) by outcome (held, not_held), and answers sent as same_answer.",
		}, []string{"outcome"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netloom_agent_tunnel_results_total", Help: "Per-tunnel declaration results by status.",
		}, []string{"status"}),
		orphans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netloom_agent_orphans_removed_total", Help: "Owned tunnel ports removed as orphans.",
		}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netloom_agent_repairs_total", Help: "Repairs made without a declaration, by cause.",
		}, []string{"cause"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "netloom_agent_convergence_seconds", Help: "Time to converge a declaration or a repair.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		stale: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netloom_agent_stale_declarations_total", Help: "Declarations refused for a stale generation.",
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netloom_agent_skipped_total", Help: "Declarations and repairs skipped because the bridge could not be read.",
		}),
		underlayPeers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "netloom_agent_underlay_peers", Help: "Peers of the last underlay check, by status (ok, unreachable, port_blocked, mtu).",
		}, []string{"status"}),
		underlayDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "netloom_agent_underlay_check_seconds", Help: "Time to check the underlay to every peer.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		underlayMTU: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "netloom_agent_underlay_mtu", Help: "MTU of the interface that holds the data IP.",
		}),
	}
	m.reg.MustRegister(m.declarations, m.conditional, m.results, m.orphans, m.repairs, m.duration, m.stale, m.skipped,
		m.underlayPeers, m.underlayDuration, m.underlayMTU)
	return m
}
