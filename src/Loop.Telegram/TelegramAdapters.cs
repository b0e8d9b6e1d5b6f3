namespace Loop.Telegram;

using Loop.Domain.Connectors;
using Loop.Runtime;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

/// <summary>Makes the bot of each Telegram connector from the node's parts.</summary>
/// <param name="timings">Shorter waits for tests; Telegram's own pace by default.</param>
public sealed class TelegramAdapters(IServiceProvider node, TimeProvider time, TelegramTimings? timings = null) : IChatAdapterFactory
{
    public ConnectorKind Kind => ConnectorKind.Telegram;

    public IChatAdapter Create(Connector connector, IReadOnlyDictionary<string, string> secrets) =>
        new TelegramChatAdapter(connector, TelegramOptions.From(connector.Settings, secrets, connector.Allowed) with { Timings = timings ?? new TelegramTimings() },
            node.GetRequiredService<ChannelService>(), node.GetRequiredService<TaskService>(), node.GetRequiredService<ILoopEvents>(),
            // Resolved when asked: the node's health lists this adapter.
            () => node.GetRequiredService<NodeHealth>().Report(), time, node.GetRequiredService<ILoggerFactory>(), node.GetRequiredService<BudgetService>(),
            node.GetRequiredService<ChatRoleBook>());
}
