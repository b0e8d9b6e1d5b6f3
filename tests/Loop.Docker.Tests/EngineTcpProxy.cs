namespace Loop.Docker.Tests;

using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

/// <summary>The real engine on a loopback tcp port, as `dockerd -H tcp://…` (with --tlsverify when
/// given a certificate) would serve it: each connection is forwarded to the engine's unix socket,
/// half-closes included, so an attached container sees the end of its stdin.</summary>
public sealed class EngineTcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly string _socketPath;
    private readonly X509Certificate2? _serverCertificate;
    private readonly X509Certificate2? _clientAuthority;
    private readonly Task _accepting;

    /// <param name="serverCertificate">Serve TLS with it; null for plain tcp.</param>
    /// <param name="clientAuthority">With TLS: clients must present a certificate it issued.</param>
    public EngineTcpProxy(string engineHost, X509Certificate2? serverCertificate = null, X509Certificate2? clientAuthority = null)
    {
        _socketPath = engineHost.StartsWith("unix://", StringComparison.Ordinal)
            ? engineHost["unix://".Length..]
            : throw new InvalidOperationException($"the tests' engine must be on a unix socket, not {engineHost}");
        _serverCertificate = serverCertificate;
        _clientAuthority = clientAuthority;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptSocketAsync(_stop.Token);
                _ = ForwardAsync(client);
            }
        }
        // A listener stopped before the first accept began says so with InvalidOperationException.
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
        }
    }

    private async Task ForwardAsync(Socket client)
    {
        using var engine = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var clientStream = new NetworkStream(client, ownsSocket: true);
        try
        {
            Stream inbound = clientStream;
            if (_serverCertificate is not null)
            {
                var tls = new SslStream(clientStream, leaveInnerStreamOpen: true, (_, certificate, _, _) => certificate is not null && IssuedBy(certificate, _clientAuthority!));
                await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                {
                    ServerCertificate = _serverCertificate,
                    ClientCertificateRequired = true,
                }, _stop.Token);
                inbound = tls;
            }

            await engine.ConnectAsync(new UnixDomainSocketEndPoint(_socketPath), _stop.Token);
            using var engineStream = new NetworkStream(engine, ownsSocket: false);
            await Task.WhenAll(
                PumpAsync(inbound, engineStream, () => engine.Shutdown(SocketShutdown.Send)),
                PumpAsync(engineStream, inbound, () => client.Shutdown(SocketShutdown.Send)));
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or System.Security.Authentication.AuthenticationException)
        {
            // A refused handshake or a dropped connection ends this one connection, as it would for dockerd.
        }
    }

    private async Task PumpAsync(Stream from, Stream to, Action closeWrite)
    {
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = await from.ReadAsync(buffer, _stop.Token)) > 0)
        {
            await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
        }
        closeWrite();
    }

    private static bool IssuedBy(X509Certificate certificate, X509Certificate2 authority)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(authority);
        using var presented = new X509Certificate2(certificate);
        return chain.Build(presented);
    }
}

/// <summary>A certificate authority made for one test, and the PEM files docker's TLS settings name.</summary>
public sealed class TestCertificates : IDisposable
{
    private readonly ECDsa _authorityKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public TestCertificates(string name)
    {
        var request = new CertificateRequest($"CN={name}", _authorityKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        Authority = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(7));
    }

    public X509Certificate2 Authority { get; }

    /// <summary>A certificate for <paramref name="dnsName"/> issued by <see cref="Authority"/>, with its key.</summary>
    public X509Certificate2 Issue(string dnsName, bool server)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={dnsName}", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(dnsName);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [server ? new Oid("1.3.6.1.5.5.7.3.1") : new Oid("1.3.6.1.5.5.7.3.2")], false));
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        // Within the authority's own validity: a certificate may not outlive its issuer.
        using var issued = request.Create(Authority, Authority.NotBefore, Authority.NotAfter, serial);
        using var withKey = issued.CopyWithPrivateKey(key);
        // Exported and loaded again: SslStream on Linux wants a key it can use after this method's own is gone.
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>ca.pem, cert.pem and key.pem (a client certificate) in a new directory, as DOCKER_CERT_PATH holds them.</summary>
    public string WriteClientFiles(X509Certificate2 authority)
    {
        var dir = Directory.CreateTempSubdirectory("loop-docker-tls-").FullName;
        using var client = Issue("loop-client", server: false);
        File.WriteAllText(Path.Combine(dir, "ca.pem"), authority.ExportCertificatePem());
        File.WriteAllText(Path.Combine(dir, "cert.pem"), client.ExportCertificatePem());
        File.WriteAllText(Path.Combine(dir, "key.pem"), client.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        return dir;
    }

    public void Dispose()
    {
        Authority.Dispose();
        _authorityKey.Dispose();
    }
}
