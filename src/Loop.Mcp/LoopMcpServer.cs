namespace Loop.Mcp;

using System.Text.Json;
using Loop.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

/// <summary>What <c>loop mcp</c> was started with. Exactly one of <see cref="ChannelId"/> and
/// <see cref="DirPath"/> is set; <see cref="Token"/> null means "from the environment".</summary>
public sealed record LoopMcpOptions(string ApiUrl, string? ChannelId, string? DirPath, string? Token);

/// <summary>The <c>loop</c> MCP server over stdio. Stdout carries only the protocol; logs go to stderr.</summary>
public static class LoopMcpServer
{
    public const string ServerName = "loop";

    /// <summary>Serves until the client closes stdin or the process is stopped.</summary>
    public static async Task<int> RunAsync(LoopMcpOptions options, CancellationToken cancellationToken)
    {
        if (options.ChannelId is null == options.DirPath is null)
        {
            throw new ArgumentException("give exactly one of a channel id and a directory", nameof(options));
        }
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            Args = [],
            // Never pick up an appsettings.json from the project directory Claude Code starts us in.
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();
        builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        builder.Logging.AddFilter("ModelContextProtocol", LogLevel.Warning);
        // It logs a failed tool call with its stack trace; the filter below says it in one line instead.
        builder.Logging.AddFilter("ModelContextProtocol.Server.McpServer", LogLevel.None);
        builder.Logging.AddFilter("System.Net.Http", LogLevel.Warning);
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);

        builder.Services.AddSingleton(_ => new LoopApiClient(options.ApiUrl, options.Token));
        builder.Services.AddSingleton(sp => new ChannelScope(sp.GetRequiredService<LoopApiClient>(), options.ChannelId, options.DirPath));
        builder.Services
            .AddMcpServer(o =>
            {
                o.ServerInfo = new() { Name = ServerName, Version = typeof(LoopMcpServer).Assembly.GetName().Version?.ToString(3) ?? "0.0.0" };
                o.ServerInstructions =
                    "Loop runs Claude Code agents for a chat channel. These tools schedule and manage the channel's tasks: " +
                    "prompts that Loop runs later, on a cron schedule, at an interval, once, or as an autonomous loop. " +
                    "Every tool acts on this server's own channel.";
            })
            .WithStdioServerTransport()
            .WithTools<TaskTools>()
            .WithRequestFilters(filters => filters.AddCallToolFilter(next => async (request, cancellationToken) =>
            {
                // Arguments that do not bind to the tool's parameters (missing, wrong JSON type) fail
                // before the tool runs; say what was wrong instead of the SDK's generic message.
                try
                {
                    return await next(request, cancellationToken);
                }
                catch (Exception error) when (error is ArgumentException or JsonException)
                {
                    var message = error.Message.Replace(" (Parameter 'arguments')", "", StringComparison.Ordinal);
                    return TaskTools.Result($"invalid arguments for {request.Params?.Name}: {message} See the tool's input schema.", isError: true);
                }
                catch (Exception error) when (error is not OperationCanceledException)
                {
                    // The client gets the protocol's error (an unknown tool is -32602); the log one line.
                    request.Services?.GetService<ILoggerFactory>()?.CreateLogger("Loop.Mcp")
                        .LogWarning("tools/call {Tool} failed: {Error}", request.Params?.Name, error.Message);
                    throw;
                }
            }));

        using var host = builder.Build();
        var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Loop.Mcp");
        logger.LogInformation("loop MCP server for {Channel} calling {ApiUrl}", options.ChannelId ?? $"dir {options.DirPath}", options.ApiUrl);
        await host.RunAsync(cancellationToken);
        return 0;
    }
}
