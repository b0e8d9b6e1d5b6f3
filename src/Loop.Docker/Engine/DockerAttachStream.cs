namespace Loop.Docker.Engine;

using System.Buffers.Binary;
using System.Net.Sockets;

public enum AttachStreamKind : byte
{
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
}

/// <summary>One frame of the multiplexed output of a container without a TTY.</summary>
public sealed record AttachFrame(AttachStreamKind Stream, ReadOnlyMemory<byte> Payload);

/// <summary>A hijacked attach connection: write the container's stdin, half-close it, and read its
/// stdout and stderr demultiplexed (8-byte header: stream byte, 3 zero bytes, big-endian length).</summary>
public sealed class DockerAttachStream : IDisposable
{
    private const int HeaderLength = 8;

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly byte[] _leftover;
    private int _leftoverOffset;

    internal DockerAttachStream(Socket socket, NetworkStream stream, byte[] leftover)
    {
        _socket = socket;
        _stream = stream;
        _leftover = leftover;
    }

    public async Task WriteStdinAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await _stream.WriteAsync(data, cancellationToken).ConfigureAwait(false);
        await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Half-closes the connection: the container sees end of file on stdin while its
    /// output keeps flowing to us.</summary>
    public void CloseStdin() => _socket.Shutdown(SocketShutdown.Send);

    /// <summary>The next frame, or null once the container's output has ended.</summary>
    public async Task<AttachFrame?> ReadFrameAsync(CancellationToken cancellationToken)
    {
        var header = new byte[HeaderLength];
        if (!await ReadExactlyOrEndAsync(header, cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4));
        var payload = new byte[length];
        if (!await ReadExactlyOrEndAsync(payload, cancellationToken).ConfigureAwait(false))
        {
            throw new IOException("Docker engine closed the attach stream in the middle of a frame");
        }

        return new AttachFrame((AttachStreamKind)header[0], payload);
    }

    public void Dispose()
    {
        _stream.Dispose();
        _socket.Dispose();
    }

    /// <summary>Fills the buffer; false when the stream ended before the first byte.</summary>
    private async Task<bool> ReadExactlyOrEndAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var filled = 0;
        while (filled < buffer.Length)
        {
            int read;
            if (_leftoverOffset < _leftover.Length)
            {
                read = Math.Min(buffer.Length - filled, _leftover.Length - _leftoverOffset);
                _leftover.AsMemory(_leftoverOffset, read).CopyTo(buffer[filled..]);
                _leftoverOffset += read;
            }
            else
            {
                read = await _stream.ReadAsync(buffer[filled..], cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    if (filled == 0)
                    {
                        return false;
                    }

                    throw new IOException("Docker engine closed the attach stream in the middle of a frame");
                }
            }

            filled += read;
        }

        return true;
    }
}
