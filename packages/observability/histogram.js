// A histogram for the per-request series, registered in a prom-client Registry like prom-client's own.
//
// prom-client's Histogram.observe builds a wrapper object, checks every label name against the label set and
// joins the labels into a hash string on every call; its labels() handle does the same on each observe. Here
// the label values are positional (in labelNames order) and a series is found by walking one Map per label, so
// an observation of a series seen before allocates nothing: a Map lookup per label, a linear scan of the
// bounds, three additions. Checked per call only what correctness needs: a finite value (prom-client throws the
// same TypeError) and the number of label values. What a new series' label values are is checked once, when
// the series is made.
//
// The Registry formats what getForPromString()/get() return exactly as it formats a prom-client Histogram's
// (same rows, same order: buckets cumulative with `le` first, +Inf, _sum, _count; series in the order they
// were first observed), so the exposition text is byte-for-byte the same; test/histogram.test.ts checks it
// against prom-client with random observations.
//
// Cost per observation against prom-client's Histogram, one process, same run: `npm run bench:histogram`;
// the latest figures are in docs/performance.md ("Hot-path choices").
import { format } from 'node:util'

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
/** observe() takes the label values as named parameters (a rest parameter would allocate an array per call). */
const MAX_LABELS = 4

class Series {
  constructor (labels, bucketCount) {
    this.labels = labels
    /** Observations per bucket, not cumulative: counts[i] holds those with bounds[i-1] < value <= bounds[i]. */
    this.counts = new Float64Array(bucketCount)
    this.count = 0
    this.sum = 0
  }
}

export class PositionalHistogram {
  #bounds
  #arity
  /** Nested Maps, one level per label, ending in a Series; unused without labels. */
  #root = new Map()
  /** Every series in the order it was first observed, which is the order prom-client exposes them in. */
  #series = []

  constructor ({ name, help, labelNames = [], buckets, registers }) {
    if (typeof name !== 'string' || !METRIC_NAME.test(name)) throw new TypeError(`Invalid metric name: ${format(name)}`)
    if (typeof help !== 'string' || help === '') throw new TypeError(`${name}: help must be a non-empty string`)
    if (!Array.isArray(labelNames) || !labelNames.every((l) => typeof l === 'string' && LABEL_NAME.test(l))) {
      throw new TypeError(`${name}: invalid label names ${format(labelNames)}`)
    }
    if (labelNames.includes('le')) throw new TypeError(`${name}: le is a reserved label name`)
    if (new Set(labelNames).size !== labelNames.length) throw new TypeError(`${name}: duplicate label names ${format(labelNames)}`)
    if (labelNames.length > MAX_LABELS) throw new TypeError(`${name}: at most ${MAX_LABELS} label names, got ${labelNames.length}`)
    if (!Array.isArray(buckets) || buckets.length === 0 || !buckets.every((b, i) => Number.isFinite(b) && (i === 0 || b > buckets[i - 1]))) {
      throw new TypeError(`${name}: buckets must be finite numbers in increasing order, got ${format(buckets)}`)
    }
    if (!Array.isArray(registers) || registers.length === 0) throw new TypeError(`${name}: registers must name at least one Registry`)

    this.name = name
    this.help = help
    this.type = 'histogram'
    this.aggregator = 'sum'
    this.labelNames = Object.freeze([...labelNames])
    this.buckets = Object.freeze([...buckets])
    this.#bounds = Float64Array.from(buckets)
    this.#arity = labelNames.length
    // As prom-client does: a histogram without labels shows its one (empty) series before any observation.
    if (this.#arity === 0) this.#series.push(new Series({}, buckets.length))
    for (const registry of registers) registry.registerMetric(this)
  }

  /**
   * Records `value` in the series of the label values `v0`… given in labelNames order, one per label name.
   * Throws a TypeError for a value that is not a finite number (as prom-client does) and an Error for the wrong
   * number of label values; a label value that is not a string is refused when it would make a new series.
   */
  observe (value, v0, v1, v2, v3) {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${format(value)}`)
    if (arguments.length !== this.#arity + 1) throw this.#labelCountError(arguments.length - 1)
    const series = this.#find(v0, v1, v2, v3) ?? this.#add([v0, v1, v2, v3].slice(0, this.#arity))
    const bounds = this.#bounds
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]) {
        series.counts[i] += 1
        break
      }
    }
    series.count += 1
    series.sum += value
  }

  #find (v0, v1, v2, v3) {
    const root = this.#root
    switch (this.#arity) {
      case 0: return this.#series[0]
      case 1: return root.get(v0)
      case 2: return root.get(v0)?.get(v1)
      case 3: return root.get(v0)?.get(v1)?.get(v2)
      default: return root.get(v0)?.get(v1)?.get(v2)?.get(v3)
    }
  }

  #add (values) {
    const labels = {}
    for (let i = 0; i < values.length; i++) {
      if (typeof values[i] !== 'string') {
        throw new TypeError(`${this.name}: label ${this.labelNames[i]} must be a string, got ${format(values[i])}`)
      }
      labels[this.labelNames[i]] = values[i]
    }
    const series = new Series(labels, this.#bounds.length)
    if (values.length > 0) {
      let level = this.#root
      for (let i = 0; i < values.length - 1; i++) {
        let next = level.get(values[i])
        if (next === undefined) level.set(values[i], next = new Map())
        level = next
      }
      level.set(values[values.length - 1], series)
    }
    this.#series.push(series)
    return series
  }

  #labelCountError (given) {
    return new Error(`${this.name}: ${given} label values given for the ${this.#arity} label names ${format(this.labelNames)}`)
  }

  /** Forgets every series (Registry.resetMetrics calls it); as with prom-client, none is shown until observed again. */
  reset () {
    this.#root = new Map()
    this.#series = []
  }

  /**
   * What the Registry formats: prom-client Histogram's rows, with each series' labels as `sharedLabels` (one
   * object per series, so the Registry formats them once per series and caches the text).
   */
  async getForPromString () {
    const values = []
    const bucketName = `${this.name}_bucket`
    for (const series of this.#series) {
      let cumulative = 0
      for (let i = 0; i < this.buckets.length; i++) {
        cumulative += series.counts[i]
        values.push({ labels: { le: this.buckets[i] }, sharedLabels: series.labels, value: cumulative, metricName: bucketName, exemplar: null })
      }
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: series.labels, value: series.count, metricName: bucketName, exemplar: null },
        { labels: {}, sharedLabels: series.labels, value: series.sum, metricName: `${this.name}_sum`, exemplar: undefined },
        { labels: {}, sharedLabels: series.labels, value: series.count, metricName: `${this.name}_count`, exemplar: undefined }
      )
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }

  /** The rows as prom-client Histogram.get() gives them: each row's labels with the series' labels merged in (after `le`). */
  async get () {
    const data = await this.getForPromString()
    data.values = data.values.map(({ labels, sharedLabels, ...row }) => ({ ...row, labels: { ...labels, ...sharedLabels } }))
    return data
  }
}
