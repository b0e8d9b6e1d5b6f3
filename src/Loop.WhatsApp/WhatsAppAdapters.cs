namespace Loop.WhatsApp;

using Loop.Domain.Connectors;
using Loop.Runtime;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

/// <summary>Makes the adapter of each WhatsApp connector from the node's parts.</summary>
public sealed class WhatsAppAdapters(IServiceProvider node, TimeProvider time) : IChatAdapterFactory
{
    public ConnectorKind Kind => ConnectorKind.WhatsApp;

    public IChatAdapter Create(Connector connector, IReadOnlyDictionary<string, string> secrets) =>
        new WhatsAppChatAdapter(connector, secrets, node.GetRequiredService<ChannelService>(), node.GetRequiredService<ILoopEvents>(), time,
            node.GetRequiredService<ILoggerFactory>());
}
