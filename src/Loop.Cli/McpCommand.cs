namespace Loop.Cli;

using System.CommandLine;
using System.CommandLine.Parsing;
using Loop.Client;
using Loop.Mcp;

/// <summary><c>loop mcp</c>: the MCP server (stdio) for one channel's tasks.</summary>
public static class McpCommand
{
    public static Command Create()
    {
        var channelId = new Option<string?>("--channel-id") { Description = "The channel whose tasks the tools act on, e.g. ch_01JD..." };
        var dir = new Option<string?>("--dir") { Description = "A project directory: registers (or finds) its channel through the API" };
        var apiUrl = ApiUrlOption();
        var token = TokenOption();
        var command = new Command("mcp", "Run the loop MCP server over stdio (tools to schedule and manage a channel's tasks)")
        {
            channelId, dir, apiUrl, token,
        };
        command.Aliases.Add("m");
        command.Validators.Add(result =>
        {
            OptionResult?[] given = [result.GetResult(channelId), result.GetResult(dir)];
            if (given.Any(g => g is { Tokens.Count: 0 }))
            {
                return; // an option without its value: the parser says so (reading it here would throw)
            }
            if (given.Count(g => g is { } option && !string.IsNullOrWhiteSpace(option.Tokens[0].Value)) != 1)
            {
                result.AddError("loop mcp needs exactly one of --channel-id <id> and --dir <path>");
            }
        });
        command.SetAction((parse, cancellationToken) =>
        {
            var directory = parse.GetValue(dir) is { } d && !string.IsNullOrWhiteSpace(d) ? Path.GetFullPath(d) : null;
            var options = new LoopMcpOptions(
                LoopApiClient.ResolveApiUrl(parse.GetValue(apiUrl)),
                directory is null ? parse.GetValue(channelId)!.Trim() : null,
                directory,
                parse.GetValue(token));
            return LoopMcpServer.RunAsync(options, cancellationToken);
        });
        return command;
    }

    /// <summary><c>--api-url</c>, checked at parse time so a bad URL is a usage error (exit 2).</summary>
    internal static Option<string?> ApiUrlOption()
    {
        var option = new Option<string?>("--api-url")
        {
            Description = $"The daemon's API: http://host:port or unix:///path/to/loop.sock (default: LOOP_API_URL, else {LoopApiClient.DefaultApiUrl})",
        };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } url)
            {
                try
                {
                    LoopApiClient.ParseApiUrl(url);
                }
                catch (FormatException error)
                {
                    result.AddError($"--api-url: {error.Message}");
                }
            }
        });
        return option;
    }

    internal static Option<string?> TokenOption() => new("--token")
    {
        Description = "Bearer token for the API (default: LOOP_CHANNEL_TOKEN, else LOOP_API_TOKEN)",
    };
}
