namespace Loop.Cli;

/// <summary>How to start this same <c>loop</c> again: from a service definition or from an MCP client.</summary>
internal static class LoopExecutable
{
    /// <summary>True under <c>dotnet loop.dll</c> (development, tests) rather than the published binary.</summary>
    public static bool RunsThroughDotnet =>
        string.Equals(Path.GetFileNameWithoutExtension(Environment.ProcessPath), "dotnet", StringComparison.OrdinalIgnoreCase);

    /// <summary>The program and the arguments that come before a subcommand:
    /// [/usr/local/bin/loop] or, under dotnet, [/usr/bin/dotnet, /path/loop.dll].</summary>
    public static IReadOnlyList<string> Command =>
        RunsThroughDotnet
            ? [Environment.ProcessPath!, Path.Combine(AppContext.BaseDirectory, "loop.dll")]
            : [Environment.ProcessPath ?? "loop"];

    /// <summary>What .mcp.json names as the command: this binary's absolute path, or plain
    /// <c>loop</c> (found on PATH) when running through dotnet, whose path would not start Loop.</summary>
    public static string McpCommand => RunsThroughDotnet ? "loop" : Environment.ProcessPath ?? "loop";
}
