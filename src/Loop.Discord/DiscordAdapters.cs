namespace Loop.Discord;

using Loop.Domain.Connectors;
using Loop.Runtime;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

/// <summary>Makes the bot of each Discord connector from the node's parts.</summary>
/// <param name="timings">Shorter waits for tests; Discord's own by default.</param>
public sealed class DiscordAdapters(IServiceProvider node, TimeProvider time, DiscordTimings? timings = null) : IChatAdapterFactory
{
    public ConnectorKind Kind => ConnectorKind.Discord;

    public IChatAdapter Create(Connector connector, IReadOnlyDictionary<string, string> secrets) =>
        new DiscordChatAdapter(connector, DiscordOptions.From(connector.Settings, secrets) with { Timings = timings ?? new DiscordTimings() },
            node.GetRequiredService<ChannelService>(), node.GetRequiredService<TaskService>(), node.GetRequiredService<ILoopEvents>(),
            // Resolved when asked: the node's health lists this adapter.
            () => node.GetRequiredService<NodeHealth>().Report(), time, node.GetRequiredService<ILoggerFactory>(), node.GetRequiredService<BudgetService>(),
            node.GetRequiredService<ChatRoleBook>());
}
