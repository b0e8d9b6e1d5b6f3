namespace Loop.Email;

using System.Globalization;
using System.Net.Security;
using MailKit.Security;

/// <summary>How long the connector waits between things; the defaults are for real mail servers.</summary>
/// <param name="Poll">How often the inbox is checked where the server has no IDLE.</param>
/// <param name="IdleRestart">IDLE is restarted this often (servers drop an IDLE after 30 minutes).</param>
/// <param name="ReconnectBase">The first wait after a lost connection; it doubles up to <paramref name="ReconnectMax"/>.</param>
/// <param name="UseIdle">False polls even where the server offers IDLE (tests of the polling path).</param>
public sealed record EmailTimings(
    TimeSpan? Poll = null,
    TimeSpan? IdleRestart = null,
    TimeSpan? ReconnectBase = null,
    TimeSpan? ReconnectMax = null,
    bool UseIdle = true)
{
    public TimeSpan PollEvery => Poll ?? TimeSpan.FromSeconds(30);
    public TimeSpan IdleFor => IdleRestart ?? TimeSpan.FromMinutes(9);
    public TimeSpan FirstRetry => ReconnectBase ?? TimeSpan.FromSeconds(1);
    public TimeSpan LastRetry => ReconnectMax ?? TimeSpan.FromMinutes(1);
}

/// <summary>One server of the connector: host, port and how its connection is secured.</summary>
public sealed record MailEndpoint(string Host, int Port, SecureSocketOptions Security)
{
    public override string ToString() => $"{Host}:{Port.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>An email connector's settings, opened (see <c>ConnectorSpec</c> for what each one is).</summary>
/// <param name="CertificateCheck">Decides about the servers' certificates instead of the system's trust
/// store; only code sets it (tests that trust their own server's self-signed certificate). Null: the
/// system's checks, as for any TLS client.</param>
public sealed record EmailOptions(
    MailEndpoint Imap,
    MailEndpoint Smtp,
    string Username,
    string Password,
    string Address,
    EmailTimings Timings,
    RemoteCertificateValidationCallback? CertificateCheck = null)
{
    /// <summary>Reads the settings <c>ConnectorSpec</c> has already checked.</summary>
    public static EmailOptions From(IReadOnlyDictionary<string, string> settings, IReadOnlyDictionary<string, string> secrets)
    {
        var tls = settings.GetValueOrDefault("tls", "auto");
        return new EmailOptions(
            Endpoint(Required(settings, "imap"), tls, implicitTlsPort: 993),
            Endpoint(Required(settings, "smtp"), tls, implicitTlsPort: 465),
            Required(settings, "username"),
            secrets.GetValueOrDefault("password") ?? throw new InvalidOperationException("the email connector has no password"),
            Required(settings, "address"),
            new EmailTimings());
    }

    private static string Required(IReadOnlyDictionary<string, string> settings, string name) =>
        settings.GetValueOrDefault(name) ?? throw new InvalidOperationException($"the email connector has no {name}");

    /// <summary>auto: TLS from the first byte on the implicit-TLS port (993, 465), STARTTLS
    /// (required, never skipped) elsewhere; none: plaintext, for servers on loopback.</summary>
    public static MailEndpoint Endpoint(string hostPort, string tls, int implicitTlsPort)
    {
        var colon = hostPort.LastIndexOf(':');
        var host = hostPort[..colon].Trim('[', ']');
        var port = int.Parse(hostPort[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture);
        var security = tls switch
        {
            "none" => SecureSocketOptions.None,
            "tls" => SecureSocketOptions.SslOnConnect,
            "starttls" => SecureSocketOptions.StartTls,
            _ => port == implicitTlsPort ? SecureSocketOptions.SslOnConnect : SecureSocketOptions.StartTls,
        };
        return new MailEndpoint(host, port, security);
    }
}
