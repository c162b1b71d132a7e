// Drives Craton HSM through Java 17's SunPKCS11 provider and cross-checks every result with
// Java's own software providers (SunEC, SunRsaSign, SunJCE). Compiled and run by
// test/interop/java-sunpkcs11.test.ts.
//
//   java -cp DIR CratonInterop <SunPKCS11 config file> <user PIN>
//
// Prints one line per check: "PASS <name>" or "FAIL <name> <reason>", then "DONE <failures>".
// Exit status 0 only when every check passed.
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.Provider;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.Signature;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.security.spec.RSAKeyGenParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;

public class CratonInterop {
    interface Check {
        void run() throws Exception;
    }

    static int failures = 0;
    static final SecureRandom SOFT = new SecureRandom();

    static void check(String name, Check c) {
        try {
            c.run();
            System.out.println("PASS " + name);
        } catch (Throwable t) {
            failures++;
            System.out.println("FAIL " + name + " " + t);
            for (Throwable cause = t.getCause(); cause != null; cause = cause.getCause()) {
                System.out.println("  caused by " + cause);
            }
        }
    }

    static void require(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    static byte[] rnd(int n) {
        byte[] b = new byte[n];
        SOFT.nextBytes(b);
        return b;
    }

    /** The HSM public key re-imported into a software provider (via its X.509 encoding). */
    static PublicKey soft(PublicKey hsmKey, String alg, String provider) throws Exception {
        return KeyFactory.getInstance(alg, provider).generatePublic(new X509EncodedKeySpec(hsmKey.getEncoded()));
    }

    static void signCheck(Provider p, KeyPair kp, String alg, String keyAlg, String softProvider, PSSParameterSpec pss) throws Exception {
        byte[] msg = rnd(300);
        Signature s = Signature.getInstance(alg, p);
        if (pss != null) s.setParameter(pss);
        s.initSign(kp.getPrivate());
        s.update(msg);
        byte[] sig = s.sign();
        require(s.getProvider() == p, alg + " signed by " + s.getProvider().getName());

        Signature v = Signature.getInstance(alg, softProvider);
        if (pss != null) v.setParameter(pss);
        PublicKey pub = soft(kp.getPublic(), keyAlg, softProvider);
        v.initVerify(pub);
        v.update(msg);
        require(v.verify(sig), alg + ": " + softProvider + " does not verify the HSM signature");

        msg[0] ^= 1;
        v.initVerify(pub);
        v.update(msg);
        require(!v.verify(sig), alg + ": " + softProvider + " verifies a signature over other data");

        // The HSM verifies its own signature too (C_Verify through the provider).
        msg[0] ^= 1;
        Signature hv = Signature.getInstance(alg, p);
        if (pss != null) hv.setParameter(pss);
        hv.initVerify(kp.getPublic());
        hv.update(msg);
        require(hv.verify(sig), alg + ": the HSM does not verify its own signature");
    }

    public static void main(String[] args) throws Exception {
        Provider p = Security.getProvider("SunPKCS11").configure(args[0]);
        Security.addProvider(p);
        System.out.println("PROVIDER " + p.getName());
        KeyStore ks = KeyStore.getInstance("PKCS11", p);
        ks.load(null, args[1].toCharArray()); // C_Login

        check("SecureRandom", () -> {
            SecureRandom sr = SecureRandom.getInstance("PKCS11", p);
            require(sr.getProvider() == p, "provider " + sr.getProvider().getName());
            byte[] a = new byte[32], b = new byte[32];
            sr.nextBytes(a);
            sr.nextBytes(b);
            require(!Arrays.equals(a, b), "two reads returned the same bytes");
            require(!Arrays.equals(a, new byte[32]), "all zero");
            byte[] big = new byte[4096];
            sr.nextBytes(big);
            int[] counts = new int[256];
            for (byte x : big) counts[x & 0xff]++;
            int max = Arrays.stream(counts).max().getAsInt();
            require(max < 64, "byte value repeated " + max + " times in 4096 bytes");
        });

        KeyPairGenerator ecg = KeyPairGenerator.getInstance("EC", p);
        ecg.initialize(new ECGenParameterSpec("secp256r1"));
        KeyPair ec = ecg.generateKeyPair();
        check("SHA256withECDSA", () -> signCheck(p, ec, "SHA256withECDSA", "EC", "SunEC", null));

        KeyPairGenerator rsag = KeyPairGenerator.getInstance("RSA", p);
        rsag.initialize(new RSAKeyGenParameterSpec(2048, RSAKeyGenParameterSpec.F4));
        KeyPair rsa = rsag.generateKeyPair();
        check("SHA256withRSA", () -> signCheck(p, rsa, "SHA256withRSA", "RSA", "SunRsaSign", null));
        check("RSASSA-PSS", () -> signCheck(p, rsa, "RSASSA-PSS", "RSA", "SunRsaSign",
                new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1)));

        check("AES/GCM/NoPadding", () -> {
            SecretKeySpec key = new SecretKeySpec(rnd(32), "AES");
            byte[] iv = rnd(12), aad = rnd(20), pt = rnd(1000);
            Cipher h = Cipher.getInstance("AES/GCM/NoPadding", p);
            h.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(128, iv));
            h.updateAAD(aad);
            byte[] ct = h.doFinal(pt);
            require(h.getProvider() == p, "provider " + h.getProvider().getName());
            Cipher s = Cipher.getInstance("AES/GCM/NoPadding", "SunJCE");
            s.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(128, iv));
            s.updateAAD(aad);
            require(Arrays.equals(ct, s.doFinal(pt)), "HSM ciphertext||tag differs from SunJCE's");
            // SunJCE encrypts, the HSM decrypts (different IV so neither side reuses one).
            byte[] iv2 = rnd(12);
            s.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(128, iv2));
            s.updateAAD(aad);
            byte[] ct2 = s.doFinal(pt);
            Cipher hd = Cipher.getInstance("AES/GCM/NoPadding", p);
            hd.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(128, iv2));
            hd.updateAAD(aad);
            require(Arrays.equals(pt, hd.doFinal(ct2)), "HSM decryption of SunJCE ciphertext differs");
            // Wrong AAD: the HSM refuses.
            hd.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(128, iv2));
            byte[] badAad = aad.clone();
            badAad[0] ^= 1;
            hd.updateAAD(badAad);
            try {
                hd.doFinal(ct2);
                throw new AssertionError("decryption with the wrong AAD succeeded");
            } catch (AEADBadTagException expected) {
                // the tag check failed, as it must
            }
        });

        check("AES/CBC/PKCS5Padding", () -> {
            SecretKeySpec key = new SecretKeySpec(rnd(32), "AES");
            IvParameterSpec iv = new IvParameterSpec(rnd(16));
            byte[] pt = rnd(1001);
            Cipher h = Cipher.getInstance("AES/CBC/PKCS5Padding", p);
            h.init(Cipher.ENCRYPT_MODE, key, iv);
            byte[] ct = h.doFinal(pt);
            require(h.getProvider() == p, "provider " + h.getProvider().getName());
            require(ct.length == 1008, "ciphertext length " + ct.length);
            Cipher s = Cipher.getInstance("AES/CBC/PKCS5Padding", "SunJCE");
            s.init(Cipher.ENCRYPT_MODE, key, iv);
            require(Arrays.equals(ct, s.doFinal(pt)), "HSM ciphertext differs from SunJCE's");
            s.init(Cipher.DECRYPT_MODE, key, iv);
            require(Arrays.equals(pt, s.doFinal(ct)), "SunJCE does not decrypt the HSM ciphertext");
            h.init(Cipher.DECRYPT_MODE, key, iv);
            require(Arrays.equals(pt, h.doFinal(ct)), "the HSM does not decrypt its ciphertext");
        });

        check("HmacSHA256", () -> {
            SecretKeySpec key = new SecretKeySpec(rnd(32), "HmacSHA256");
            byte[] msg = rnd(777);
            Mac h = Mac.getInstance("HmacSHA256", p);
            h.init(key);
            byte[] tag = h.doFinal(msg);
            require(h.getProvider() == p, "provider " + h.getProvider().getName());
            Mac s = Mac.getInstance("HmacSHA256", "SunJCE");
            s.init(key);
            require(Arrays.equals(tag, s.doFinal(msg)), "HSM HMAC differs from SunJCE's");
            require(tag.length == 32, "tag length " + tag.length);
        });

        System.out.println("DONE " + failures);
        System.exit(failures == 0 ? 0 : 1);
    }
}
