namespace Loop.Claude;

using System.Globalization;

/// <summary>What one <c>claude --print</c> invocation needs. The prompt is not here: it goes to the
/// CLI's standard input, never onto its command line.</summary>
/// <param name="ClaudeBin">The program, e.g. "claude" (found on PATH inside the container).</param>
/// <param name="McpConfigPath">The <c>--mcp-config</c> file as the CLI will see it.</param>
/// <param name="Model">A model name or alias; null leaves the CLI's default.</param>
/// <param name="ResumeSessionId">The session to continue; null starts a new one.</param>
/// <param name="AppendSystemPrompt">Text added to the agent's system prompt (system_prompt_file), if any.</param>
/// <param name="MaxBudgetUsd">The most the run may spend (<c>--max-budget-usd</c>); null: no limit.</param>
/// <param name="ForkSession">Resume <see cref="ResumeSessionId"/> into a new session (<c>--fork-session</c>), leaving it as it was.</param>
public sealed record ClaudeCommandOptions(
    string ClaudeBin,
    string McpConfigPath,
    string? Model = null,
    string? ResumeSessionId = null,
    string? AppendSystemPrompt = null,
    decimal? MaxBudgetUsd = null,
    bool ForkSession = false);

public static class ClaudeCommandLine
{
    /// <summary>The argv of a headless run:
    /// <c>claude --mcp-config F [--model M] --print --verbose --output-format stream-json
    /// --dangerously-skip-permissions [--resume S [--fork-session]] [--append-system-prompt T] [--max-budget-usd N]</c>, with the prompt written to stdin as plain text.</summary>
    /// <remarks>With no prompt argument, <c>claude --print</c> reads the prompt from stdin. An argument
    /// would be limited to 128 KiB, could not hold a NUL, and would be visible to every user of the
    /// host (<c>/proc/PID/cmdline</c>) and in <c>docker inspect</c>.</remarks>
    public static IReadOnlyList<string> Build(ClaudeCommandOptions o)
    {
        ArgumentException.ThrowIfNullOrEmpty(o.ClaudeBin);
        ArgumentException.ThrowIfNullOrEmpty(o.McpConfigPath);

        var argv = new List<string> { o.ClaudeBin, "--mcp-config", o.McpConfigPath };
        if (!string.IsNullOrWhiteSpace(o.Model))
        {
            argv.Add("--model");
            argv.Add(o.Model);
        }
        argv.AddRange(["--print", "--verbose", "--output-format", "stream-json", "--dangerously-skip-permissions"]);
        if (!string.IsNullOrWhiteSpace(o.ResumeSessionId))
        {
            argv.Add("--resume");
            argv.Add(o.ResumeSessionId);
            if (o.ForkSession)
            {
                argv.Add("--fork-session");
            }
        }
        if (!string.IsNullOrWhiteSpace(o.AppendSystemPrompt))
        {
            argv.Add("--append-system-prompt");
            argv.Add(o.AppendSystemPrompt);
        }
        if (o.MaxBudgetUsd is { } budget)
        {
            argv.Add("--max-budget-usd");
            argv.Add(budget.ToString("0.######", CultureInfo.InvariantCulture));
        }
        return argv;
    }
}
