namespace Loop.Config;

using System.Net;
using System.Net.Sockets;

/// <summary>
/// Free loopback ports for listeners whose port nobody configured (the silo of one node, tests).
/// Taken below the kernel's ephemeral range, from which outgoing connections draw their ports: a
/// port found free there is not handed to a connection before its listener binds it.
/// </summary>
public static class FreePorts
{
    private const int Lowest = 10_000;

    /// <param name="besides">Ports the caller is about to bind itself (free now, taken soon).</param>
    public static int Loopback(params int[] besides)
    {
        var below = EphemeralLow();
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var port = Random.Shared.Next(Lowest, below);
            if (!besides.Contains(port) && IsFree(port))
            {
                return port;
            }
        }
        // A crowded machine: let the kernel pick (this race with outgoing connections is rare).
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var probe = new TcpListener(IPAddress.Loopback, port);
            probe.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int EphemeralLow()
    {
        try
        {
            var range = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
            return int.TryParse(range[0], out var low) && low > Lowest + 1_000 ? low : 32_768;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or IndexOutOfRangeException)
        {
            return 32_768; // Linux's default
        }
    }
}
