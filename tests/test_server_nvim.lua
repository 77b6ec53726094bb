-- Headless Neovim (0.7+) as the editor: start esper-lint's language server with the built-in LSP client,
-- open each file, wait for its diagnostics, apply esper-lint's quick fixes through `vim.lsp.buf.code_action`
-- (the user's path: the code-action menu is answered by picking the esper-lint fix; Neovim resolves its edit)
-- until none is offered or applies, and write the buffer. Driven by tests/test_server_nvim.py, which compares the files with `esper-lint --fix`.
-- Environment: ESPER_PYTHON (the interpreter with esper-lint), ESPER_FILES (newline-separated paths),
-- ESPER_REPORT (where to write one line per file: "ok <path> <fixes applied>" or "error <message>").
local report = {}
local function finish(ok, message)
  if message then
    table.insert(report, (ok and 'ok ' or 'error ') .. message)
  end
  vim.fn.writefile(report, os.getenv('ESPER_REPORT'))
  vim.cmd(ok and 'qall!' or 'cquit! 1')
end

local function run()
  vim.cmd('filetype on')
  local client_id = vim.lsp.start_client({
    name = 'esper-lint',
    cmd = { os.getenv('ESPER_PYTHON'), '-m', 'esper_lint', 'server' },
    root_dir = vim.fn.getcwd(),
  })
  assert(client_id, 'the language server did not start')

  -- Diagnostics published so far, per file (the handler Neovim uses, counting as it goes).
  local published = {}
  local show = vim.lsp.handlers['textDocument/publishDiagnostics']
  vim.lsp.handlers['textDocument/publishDiagnostics'] = function(err, result, ctx, config)
    show(err, result, ctx, config)
    published[result.uri] = (published[result.uri] or 0) + 1
  end
  -- The server says so (window/showMessage) when the fixer rules out a fix the checker offered.
  local declined = 0
  local notify = vim.lsp.handlers['window/showMessage']
  vim.lsp.handlers['window/showMessage'] = function(err, result, ctx, config)
    if vim.startswith(result.message, 'esper-lint: no fix applied') then
      declined = declined + 1
    end
    return notify(err, result, ctx, config)
  end
  local chosen = nil -- set by the code-action menu: true when an esper-lint fix was picked, false when none
  vim.ui.select = function(items, _, on_choice)
    for index, item in ipairs(items) do
      if vim.startswith(item[2].title, 'esper-lint: fix') then
        chosen = true
        return on_choice(item, index)
      end
    end
    chosen = false
    on_choice(nil, nil)
  end
  local function wait(what, condition)
    if not vim.wait(30000, condition, 10) then
      error('timed out waiting for ' .. what)
    end
  end

  for _, file in ipairs(vim.split(os.getenv('ESPER_FILES'), '\n', true)) do
    vim.cmd('edit ' .. vim.fn.fnameescape(file))
    local bufnr = vim.api.nvim_get_current_buf()
    local uri = vim.uri_from_bufnr(bufnr)
    local function count()
      return published[uri] or 0
    end
    assert(vim.lsp.buf_attach_client(bufnr, client_id), 'cannot attach to ' .. file)
    wait('the diagnostics of ' .. file, function()
      return count() > 0
    end)
    local applied = 0
    local progress = true
    while progress do
      progress = false
      for _, diagnostic in ipairs(vim.diagnostic.get(bufnr)) do
        local lsp = diagnostic.user_data and diagnostic.user_data.lsp or {}
        if lsp.data and lsp.data.fixable then
          vim.api.nvim_win_set_cursor(0, { diagnostic.lnum + 1, diagnostic.col })
          local tick, seen, refusals = vim.api.nvim_buf_get_changedtick(bufnr), count(), declined
          chosen = nil
          vim.lsp.buf.code_action()
          wait('the code actions', function()
            return chosen ~= nil
          end)
          if chosen then
            wait('the fix to be applied', function()
              return vim.api.nvim_buf_get_changedtick(bufnr) ~= tick or declined > refusals
            end)
          end
          if chosen and declined == refusals then
            wait('the diagnostics after the fix', function()
              return count() > seen
            end)
            applied = applied + 1
            progress = true
            break
          end
        end
      end
    end
    vim.cmd('write')
    table.insert(report, 'ok ' .. file .. ' ' .. applied)
  end
  vim.lsp.stop_client(client_id)
  finish(true)
end

local ok, err = pcall(run)
if not ok then
  finish(false, tostring(err))
end
