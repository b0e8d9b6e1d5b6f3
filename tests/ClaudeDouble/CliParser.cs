namespace Loop.Tests.ClaudeDouble;

/// <summary>What the command line asked for. Options the double accepts but does not act on are
/// parsed (so a caller passing them is not rejected) and otherwise ignored.</summary>
public sealed class CliOptions
{
    public bool Print { get; set; }
    public bool Verbose { get; set; }
    public bool Help { get; set; }
    public bool Version { get; set; }
    public bool DangerouslySkipPermissions { get; set; }
    public string OutputFormat { get; set; } = "text";
    public string InputFormat { get; set; } = "text";
    public string? Model { get; set; }
    public string? AppendSystemPrompt { get; set; }
    public decimal? MaxBudgetUsd { get; set; }
    public bool ForkSession { get; set; }
    public string? Resume { get; set; }
    public bool ResumeWithoutId { get; set; }
    public string? SessionId { get; set; }
    public List<string> McpConfigs { get; } = [];
    public string? Prompt { get; set; }
}

public sealed class CliUsageException(string message) : Exception(message);

/// <summary>Parses argv the way the real CLI's parser (commander.js) does: required option values
/// take the next argument whatever it looks like, optional values only if it is not an option,
/// variadic values (<c>--mcp-config</c>) everything up to the next option, <c>--name=value</c> works,
/// <c>--</c> ends the options, and an unknown option is an error.</summary>
public static class CliParser
{
    private enum Arity { Flag, Required, Optional, Variadic }

    private static readonly Dictionary<string, (string Name, Arity Arity, string Usage)> Options = Build(
        ("--print", "-p", Arity.Flag, "--print"),
        ("--verbose", null, Arity.Flag, "--verbose"),
        ("--help", "-h", Arity.Flag, "--help"),
        ("--version", "-v", Arity.Flag, "--version"),
        ("--debug", "-d", Arity.Optional, "--debug [filter]"),
        ("--mcp-debug", null, Arity.Flag, "--mcp-debug"),
        ("--dangerously-skip-permissions", null, Arity.Flag, "--dangerously-skip-permissions"),
        ("--output-format", null, Arity.Required, "--output-format <format>"),
        ("--input-format", null, Arity.Required, "--input-format <format>"),
        ("--include-partial-messages", null, Arity.Flag, "--include-partial-messages"),
        ("--replay-user-messages", null, Arity.Flag, "--replay-user-messages"),
        ("--model", null, Arity.Required, "--model <model>"),
        ("--fallback-model", null, Arity.Required, "--fallback-model <model>"),
        ("--resume", "-r", Arity.Optional, "--resume [sessionId]"),
        ("--continue", "-c", Arity.Flag, "--continue"),
        ("--fork-session", null, Arity.Flag, "--fork-session"),
        ("--session-id", null, Arity.Required, "--session-id <uuid>"),
        ("--mcp-config", null, Arity.Variadic, "--mcp-config <configs...>"),
        ("--strict-mcp-config", null, Arity.Flag, "--strict-mcp-config"),
        ("--allowedTools", null, Arity.Variadic, "--allowedTools <tools...>"),
        ("--allowed-tools", null, Arity.Variadic, "--allowed-tools <tools...>"),
        ("--disallowedTools", null, Arity.Variadic, "--disallowedTools <tools...>"),
        ("--disallowed-tools", null, Arity.Variadic, "--disallowed-tools <tools...>"),
        ("--add-dir", null, Arity.Variadic, "--add-dir <directories...>"),
        ("--append-system-prompt", null, Arity.Required, "--append-system-prompt <prompt>"),
        ("--max-budget-usd", null, Arity.Required, "--max-budget-usd <amount>"),
        ("--fork-session", null, Arity.Flag, "--fork-session"),
        ("--system-prompt", null, Arity.Required, "--system-prompt <prompt>"),
        ("--permission-mode", null, Arity.Required, "--permission-mode <mode>"),
        ("--max-turns", null, Arity.Required, "--max-turns <turns>"),
        ("--settings", null, Arity.Required, "--settings <file-or-json>"),
        ("--setting-sources", null, Arity.Required, "--setting-sources <sources>"),
        ("--agents", null, Arity.Required, "--agents <json>"));

    public const string HelpText =
        """
        Usage: claude [options] [command] [prompt]

        Claude Code test double (Loop). Scriptable through [[directives]] in the prompt; see
        tests/ClaudeDouble/README.md.

        Options:
          -p, --print                       Print response and exit
          --verbose                         Required with --print --output-format stream-json
          --output-format <format>          "text" (default), "json" or "stream-json"
          --model <model>                   Model for the session
          -r, --resume [sessionId]          Resume a conversation
          --mcp-config <configs...>         Load MCP servers from JSON files or strings
          --dangerously-skip-permissions    Bypass all permission checks
          -h, --help                        Display help
          -v, --version                     Output the version number

        Commands:
          mcp serve                         Start the double's MCP server (tool "echo")

        """;

    public static CliOptions Parse(IReadOnlyList<string> args)
    {
        var o = new CliOptions();
        var positional = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg == "--")
            {
                positional.AddRange(args.Skip(i + 1));
                break;
            }
            if (arg.Length < 2 || arg[0] != '-')
            {
                positional.Add(arg);
                continue;
            }

            string? inlineValue = null;
            var key = arg;
            var eq = arg.IndexOf('=');
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 2)
            {
                key = arg[..eq];
                inlineValue = arg[(eq + 1)..];
            }
            if (!Options.TryGetValue(key, out var spec))
            {
                throw new CliUsageException($"error: unknown option '{arg}'");
            }

            var values = new List<string>();
            switch (spec.Arity)
            {
                case Arity.Flag:
                    break;
                case Arity.Required:
                    if (inlineValue is not null) { values.Add(inlineValue); }
                    else if (i + 1 < args.Count) { values.Add(args[++i]); }
                    else { throw new CliUsageException($"error: option '{spec.Usage}' argument missing"); }
                    break;
                case Arity.Optional:
                    if (inlineValue is not null) { values.Add(inlineValue); }
                    else if (i + 1 < args.Count && !args[i + 1].StartsWith('-')) { values.Add(args[++i]); }
                    break;
                case Arity.Variadic:
                    if (inlineValue is not null) { values.Add(inlineValue); }
                    while (i + 1 < args.Count && !args[i + 1].StartsWith('-')) { values.Add(args[++i]); }
                    if (values.Count == 0) { throw new CliUsageException($"error: option '{spec.Usage}' argument missing"); }
                    break;
            }
            Apply(o, spec.Name, values);
        }

        if (positional.Count > 1)
        {
            throw new CliUsageException($"error: too many arguments. Expected 1 argument but got {positional.Count}.");
        }
        o.Prompt = positional.Count == 1 ? positional[0] : null;
        return o;
    }

    private static void Apply(CliOptions o, string name, List<string> values)
    {
        switch (name)
        {
            case "--print": o.Print = true; break;
            case "--verbose": o.Verbose = true; break;
            case "--help": o.Help = true; break;
            case "--version": o.Version = true; break;
            case "--dangerously-skip-permissions": o.DangerouslySkipPermissions = true; break;
            case "--fork-session": o.ForkSession = true; break;
            case "--model": o.Model = values[0]; break;
            case "--append-system-prompt": o.AppendSystemPrompt = values[0]; break;
            case "--max-budget-usd":
                o.MaxBudgetUsd = decimal.TryParse(values[0], System.Globalization.NumberStyles.Number, System.Globalization.CultureInfo.InvariantCulture, out var budget) && budget > 0
                    ? budget
                    : throw new CliUsageException($"error: option '--max-budget-usd <amount>' argument '{values[0]}' is invalid. Max budget must be a positive number.");
                break;
            case "--session-id": o.SessionId = values[0]; break;
            case "--mcp-config": o.McpConfigs.AddRange(values); break;
            case "--resume":
                o.Resume = values.Count > 0 ? values[0] : null;
                o.ResumeWithoutId = values.Count == 0;
                break;
            case "--output-format":
                o.OutputFormat = Choice("--output-format <format>", values[0], "text", "json", "stream-json");
                break;
            case "--input-format":
                o.InputFormat = Choice("--input-format <format>", values[0], "text", "stream-json");
                break;
        }
    }

    private static string Choice(string usage, string value, params string[] allowed) =>
        allowed.Contains(value)
            ? value
            : throw new CliUsageException(
                $"error: option '{usage}' argument '{value}' is invalid. Allowed choices are {string.Join(", ", allowed)}.");

    private static Dictionary<string, (string, Arity, string)> Build(params (string Long, string? Short, Arity Arity, string Usage)[] specs)
    {
        var map = new Dictionary<string, (string, Arity, string)>(StringComparer.Ordinal);
        foreach (var s in specs)
        {
            map[s.Long] = (s.Long, s.Arity, s.Usage);
            if (s.Short is not null)
            {
                map[s.Short] = (s.Long, s.Arity, s.Usage);
            }
        }
        return map;
    }
}
