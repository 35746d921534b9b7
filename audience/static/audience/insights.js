/* The portrait's charts: each drawn with ECharts from the table beside it (first column the
 * labels, the others one series each), and each table offered as a CSV file. */

function tableData(table) {
  const header = [...table.querySelectorAll("thead th")].map((cell) => cell.textContent.trim());
  const rows = [...table.querySelectorAll("tbody tr")].map((row) =>
    [...row.querySelectorAll("td")].map((cell) => cell.textContent.trim()));
  return { header, rows };
}

function csv({ header, rows }) {
  const quote = (value) => /[",\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
  return [header, ...rows].map((row) => row.map(quote).join(",")).join("\r\n") + "\r\n";
}

for (const box of document.querySelectorAll("[data-chart]")) {
  const table = document.getElementById(box.dataset.table);
  const { header, rows } = tableData(table);
  // Text columns are labels, not series; a hidden cell ("<3", fewer than three buyers) is a
  // gap in its series, never a number.
  const hidden = (value) => value.startsWith("<");
  const numeric = header.map((_, index) => index > 0 && rows.every((row) => row[index] !== ""
    && (hidden(row[index]) || !Number.isNaN(Number(row[index])))));
  const chart = echarts.init(box);
  chart.setOption({
    animation: false,
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 48, right: 16, top: 32, bottom: 64 },
    xAxis: { type: "category", data: rows.map((row) => row[0]),
             axisLabel: { interval: 0, rotate: rows.length > 6 ? 30 : 0 } },
    yAxis: { type: "value", minInterval: 1 },
    series: header.flatMap((name, index) => numeric[index] ? [{
      name, type: box.dataset.chart,
      data: rows.map((row) => hidden(row[index]) ? null : Number(row[index])),
    }] : []),
  });
  new ResizeObserver(() => chart.resize()).observe(box);
}

for (const link of document.querySelectorAll("[data-csv]")) {
  link.addEventListener("click", (event) => {
    event.preventDefault();
    const text = csv(tableData(document.getElementById(link.dataset.csv)));
    const url = URL.createObjectURL(new Blob(["\ufeff" + text], { type: "text/csv" }));
    const save = document.createElement("a");
    save.href = url;
    save.download = link.dataset.name;
    save.click();
    URL.revokeObjectURL(url);
  });
}
