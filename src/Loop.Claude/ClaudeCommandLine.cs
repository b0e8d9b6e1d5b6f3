namespace Loop.Claude;

/// <summary>What one <c>claude --print</c> invocation needs.</summary>
/// <param name="ClaudeBin">The program, e.g. "claude" (found on PATH inside the container).</param>
/// <param name="McpConfigPath">The <c>--mcp-config</c> file as the CLI will see it.</param>
/// <param name="Prompt">The whole prompt, passed as one argument.</param>
/// <param name="Model">A model name or alias; null leaves the CLI's default.</param>
/// <param name="ResumeSessionId">The session to continue; null starts a new one.</param>
public sealed record ClaudeCommandOptions(
    string ClaudeBin,
    string McpConfigPath,
    string Prompt,
    string? Model = null,
    string? ResumeSessionId = null);

public static class ClaudeCommandLine
{
    /// <summary>The argv of a headless run:
    /// <c>claude --mcp-config F [--model M] --print --verbose --output-format stream-json
    /// --dangerously-skip-permissions [--resume S] PROMPT</c>.</summary>
    /// <remarks><c>--mcp-config</c> takes several values, so it must be followed by another option,
    /// never by the prompt. A prompt that starts with '-' would be read as an option, so it is
    /// preceded by <c>--</c> (end of options).</remarks>
    public static IReadOnlyList<string> Build(ClaudeCommandOptions o)
    {
        ArgumentException.ThrowIfNullOrEmpty(o.ClaudeBin);
        ArgumentException.ThrowIfNullOrEmpty(o.McpConfigPath);
        ArgumentNullException.ThrowIfNull(o.Prompt);

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
        }
        if (o.Prompt.StartsWith('-'))
        {
            argv.Add("--");
        }
        argv.Add(o.Prompt);
        return argv;
    }
}
