using System.Text;
using Loop.Tests.ClaudeDouble;

// JSON lines and text in UTF-8 whatever the container's locale says (it sets none), as the real CLI writes them.
Console.OutputEncoding = new UTF8Encoding(false);

// `claude mcp serve` is a real subcommand (Claude Code as an MCP server); the double serves a tiny
// tool set so the [[mcp]] directive can be tested without the daemon's own server.
if (args is ["mcp", "serve", ..])
{
    return await EchoMcpServer.RunAsync(CancellationToken.None);
}

CliOptions options;
try
{
    options = CliParser.Parse(args);
}
catch (CliUsageException e)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}

if (options.Help)
{
    Console.Out.Write(CliParser.HelpText);
    return 0;
}
if (options.Version)
{
    Console.Out.WriteLine($"{DoubleRun.Version} (Claude Code)");
    return 0;
}
return await DoubleRun.ExecuteAsync(options, CancellationToken.None);
