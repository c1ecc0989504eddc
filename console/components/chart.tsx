import { useEffect, useRef } from 'preact/hooks'
import uPlot from 'uplot'

/** The same colours as the CSS classes c0..c7, for canvas strokes. */
export const PALETTE = ['#1d4ed8', '#c2410c', '#047857', '#7e22ce', '#b91c1c', '#0e7490', '#a16207', '#4d7c0f']

const pad = (n: number) => String(n).padStart(2, '0')
/** 12:04:05: the charts span minutes, so seconds are the unit that matters. */
const clockTime = (seconds: number): string => {
  const date = new Date(seconds * 1000)
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
}

export interface ChartProps {
  title: string
  unit: string
  /** x values (seconds), then one column per series */
  data: [number[], ...(number | null)[][]]
  series: { label: string; colorIndex: number }[]
  /** the figures in words, for people who cannot see the canvas */
  summary: string
}

/**
 * A small time-series chart drawn by uPlot (about 20 KB compressed, canvas, fast with
 * thousands of points); recreated only when its series change, otherwise fed new data.
 */
export function Chart(props: ChartProps) {
  const target = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  const seriesKey = props.series.map((series) => `${series.label}:${series.colorIndex}`).join(',')

  useEffect(() => {
    const element = target.current
    if (!element) return
    const width = Math.max(200, element.clientWidth)
    const options: uPlot.Options = {
      width,
      height: 130,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
      axes: [
        {
          stroke: '#374151',
          size: 28,
          space: 70,
          // whole seconds: points come every 2 s
          incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600],
          font: '11px system-ui, sans-serif',
          grid: { stroke: '#e5e7eb' },
          ticks: { stroke: '#d1d5db' },
          values: (_u, splits) => splits.map(clockTime)
        },
        { stroke: '#374151', size: 44, font: '11px system-ui, sans-serif', grid: { stroke: '#e5e7eb' }, ticks: { stroke: '#d1d5db' } }
      ],
      series: [{}, ...props.series.map((series) => ({ label: series.label, stroke: PALETTE[series.colorIndex % PALETTE.length], width: 1.5, points: { show: false } }))]
    }
    const chart = new uPlot(options, props.data, element)
    plot.current = chart
    const observer = new ResizeObserver(() => {
      const next = Math.max(200, element.clientWidth)
      if (next !== chart.width) chart.setSize({ width: next, height: 130 })
    })
    observer.observe(element)
    return () => {
      observer.disconnect()
      chart.destroy()
      plot.current = null
    }
    // recreated when the series change; data changes go through setData below
  }, [seriesKey])

  useEffect(() => {
    plot.current?.setData(props.data)
  }, [props.data])

  return (
    <figure class="chart">
      <figcaption>
        {props.title} <span class="unit">({props.unit})</span>
      </figcaption>
      <div class="chart-canvas" ref={target} role="img" aria-label={`${props.title}: ${props.summary}`} />
    </figure>
  )
}
