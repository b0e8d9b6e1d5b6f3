namespace Loop.Email;

using System.Net.Security;
using Loop.Domain.Connectors;
using Loop.Runtime;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

/// <summary>Makes the mailbox adapter of each email connector from the node's parts.</summary>
/// <param name="timings">Shorter waits for tests; the defaults otherwise.</param>
/// <param name="certificateCheck">Tests only: trusts their mail server's self-signed certificate.</param>
public sealed class EmailAdapters(IServiceProvider node, TimeProvider time, EmailTimings? timings = null,
    RemoteCertificateValidationCallback? certificateCheck = null) : IChatAdapterFactory
{
    public ConnectorKind Kind => ConnectorKind.Email;

    public IChatAdapter Create(Connector connector, IReadOnlyDictionary<string, string> secrets) =>
        new EmailChatAdapter(connector,
            EmailOptions.From(connector.Settings, secrets) with { Timings = timings ?? new EmailTimings(), CertificateCheck = certificateCheck },
            node.GetRequiredService<ChannelService>(), node.GetRequiredService<ILoopEvents>(), time, node.GetRequiredService<ILoggerFactory>());
}
