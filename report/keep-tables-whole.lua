-- A table never splits across pages: before each one, if the page has fewer lines left than the table
-- needs (a row may wrap, hence 1.2 lines a row, and 4 for the caption), start a new page. \needlines is defined in header.tex.
function Table(table)
  local rows = #table.head.rows
  for _, body in ipairs(table.bodies) do
    rows = rows + #body.body
  end
  return {pandoc.RawBlock('latex', string.format('\\needlines{%d}', math.ceil(rows * 1.2) + 4)), table}
end
